-- Each code and budget-code signal of a classification carries its readable name (the ДК021, ТПКВКМБ
-- or КПКВК name), so an analyst reading `evidence` sees "85311000-2 Послуги з надання соціальної
-- допомоги із забезпеченням проживання", not the bare code. Rows stored before have name NULL until
-- they are classified again (a change of the category files re-classifies everything).
ALTER TABLE classifications ALTER evidence TYPE STRUCT(signal VARCHAR, field VARCHAR, value VARCHAR, name VARCHAR)[];
ALTER TABLE plan_classifications ALTER evidence TYPE STRUCT(signal VARCHAR, field VARCHAR, value VARCHAR, name VARCHAR)[];
