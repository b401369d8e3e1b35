"""Generate deterministic, realistic ProZorro-like procurement data for loader benchmarks.

Two output kinds, one JSON object per line (JSON Lines, UTF-8, no ASCII escaping):

* ``ocds``: OCDS 1.1 compiled releases shaped like ProZorro's own OCDS publication
  (``ocds-be6bcu-`` ocids; parties, buyer, tender, bids, awards, contracts with amendments),
  about 5.4 KB per record.
* ``prozorro``: ProZorro API tender envelopes ``{"data": {...}, "config": {...}}`` as
  ``GET /api/2.5/tenders/{id}`` returns them (lots with lotValues, cancellations, complaints,
  and ``config.restricted`` tenders masked the way the API masks them), about 6.2 KB per record.

Codes and names come from real reference lists, read from ``data/reference`` or else from the
shared ``/work/shared/reference``: ДК021/CPV codes with their Ukrainian names
(``cpv_dk021_uk_en_ru.csv``) and the 27 regions (``ua_regions.json``). Buyers (20,000) and
suppliers (60,000) carry UA-EDR ids and are drawn with a Zipf-like skew, so a few of them appear
in a large share of the records. Method types, statuses, dates (Kyiv offsets, 2019-01-01 to
2026-11-01, in process order) and money (lognormal, mostly UAH) follow realistic mixes.

The same ``--seed`` and ``--count`` give byte-identical output (gzip header without name or
time). Records are streamed; memory stays flat whatever the count.

Run with the project's interpreter (standard library + orjson):

    python bench/generate.py --kind ocds --count 1000000 --seed 42 --out bench/out/ocds-1m.jsonl.gz
    python bench/generate.py --kind prozorro --count 100000 --out bench/out/prozorro-100k.jsonl

A path ending in ``.gz`` is written gzip-compressed at level 1. One summary line goes to stderr.
"""

import argparse
import base64
import bisect
import contextlib
import csv
import gc
import gzip
import itertools
import json
import math
import queue
import random
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_ROOT = Path("/work/shared")
CPV_CANDIDATES = (
    PROJECT_ROOT / "data/reference/cpv_dk021_uk_en_ru.csv",
    PROJECT_ROOT / "data/reference/derived/cpv_dk021_uk_en_ru.csv",
    SHARED_ROOT / "reference/derived/cpv_dk021_uk_en_ru.csv",
)
REGIONS_CANDIDATES = (
    PROJECT_ROOT / "data/reference/prozorro-standards/classifiers/ua_regions.json",
    SHARED_ROOT / "reference/prozorro-standards/classifiers/ua_regions.json",
)

RANGE_START = datetime(2019, 1, 1)
RANGE_END = datetime(2026, 11, 1)
OCID_PREFIX = "ocds-be6bcu-"
HEALTH_SOCIAL_PREFIXES = ("33", "85", "98133")
HEALTH_SOCIAL_SHARE = 0.15
BUYER_COUNT = 20_000
SUPPLIER_COUNT = 60_000
MIN_AMOUNT = 1_000.0
MAX_AMOUNT = 50_000_000.0
MASKED = "Приховано"
MASKED_DATE = "1970-01-01T03:00:00+03:00"
WRITE_BATCH = 512  # records per chunk handed to the writer thread
QUEUED_CHUNKS = 16


class WeightedChoice:
    """Picks one of several values by weight with a single random draw."""

    __slots__ = ("values", "cumulative", "total")

    def __init__(self, pairs):
        self.values = [value for value, _ in pairs]
        self.cumulative = list(itertools.accumulate(weight for _, weight in pairs))
        self.total = self.cumulative[-1]

    def pick(self, rng):
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def pick(rng, values):
    """One of ``values``, uniformly; cheaper than Random.choice on the hot path."""
    return values[int(rng.random() * len(values))]


def between(rng, low, high):
    """An int in [low, high); cheaper than Random.randrange on the hot path."""
    return low + int(rng.random() * (high - low))


def rotated_sample(rng, values, count):
    """``count`` distinct values taken in order from a random starting point."""
    start = int(rng.random() * len(values))
    return [values[(start + offset) % len(values)] for offset in range(count)]


# --- procurement mixes -------------------------------------------------------------------------

# (procurementMethodType, procurementMethod), weight. "aboveThreshold" stands for the open
# above-threshold family: it becomes aboveThresholdUA before 2023 (the martial-law "open tenders
# with features" type replaced it then) and on 15% of later tenders.
METHOD_TYPES = WeightedChoice([
    (("reporting", "limited"), 45),
    (("belowThreshold", "open"), 20),
    (("priceQuotation", "selective"), 8),
    (("aboveThreshold", "open"), 14),
    (("aboveThresholdEU", "open"), 2),
    (("negotiation", "limited"), 3),
    (("negotiation.quick", "limited"), 8),
])
COMPETITIVE_STATUSES = WeightedChoice([
    ("complete", 62), ("unsuccessful", 12), ("cancelled", 8),
    ("active.tendering", 8), ("active.awarded", 10),
])
LIMITED_STATUSES = WeightedChoice([("complete", 84), ("active", 10), ("cancelled", 6)])
OCDS_TENDER_STATUS = {
    "complete": "complete", "unsuccessful": "unsuccessful", "cancelled": "cancelled",
    "active.tendering": "active", "active.awarded": "active", "active": "active",
}
# Median expected value (UAH) per method type; spread is lognormal with sigma AMOUNT_SIGMA.
MEDIAN_VALUE = {
    "reporting": 25_000, "belowThreshold": 60_000, "priceQuotation": 180_000,
    "aboveThreshold": 1_200_000, "aboveThresholdUA": 1_200_000, "aboveThresholdEU": 6_000_000,
    "negotiation": 900_000, "negotiation.quick": 400_000,
}
AMOUNT_SIGMA = 1.3
FOREIGN_CURRENCIES = WeightedChoice([(("USD", 41.0), 60), (("EUR", 44.5), 40)])
TENDERER_COUNT = WeightedChoice([(1, 40), (2, 28), (3, 15), (4, 9), (5, 5), (6, 3)])
UNSUCCESSFUL_TENDERER_COUNT = WeightedChoice([(0, 50), (1, 35), (2, 15)])
ITEM_COUNT = WeightedChoice([(1, 74), (2, 12), (3, 7), (4, 4), (5, 3)])
LOT_COUNT = WeightedChoice([(1, 50), (2, 35), (3, 15)])
AMENDMENT_COUNT = WeightedChoice([(1, 60), (2, 28), (3, 12)])
TENDER_DOCUMENT_COUNT = WeightedChoice([(2, 70), (3, 20), (4, 10)])
LOT_SHARE_OF_NON_REPORTING = 0.36  # about 20% of all native tenders carry lots
RESTRICTED_SHARE = 0.005
COMPLAINT_SHARE_OF_COMPETITIVE = 0.067  # competitive methods are ~45%: about 3% of all
AMENDED_CONTRACT_SHARE = 0.15

# Days from the tender start to the end of the tender period, per method type.
TENDER_PERIOD_DAYS = {
    "belowThreshold": (3, 8), "priceQuotation": (3, 7), "aboveThreshold": (15, 25),
    "aboveThresholdUA": (15, 25), "aboveThresholdEU": (30, 35),
}
# Days from the winning award to the signature, per method type.
SIGNING_DAYS = {
    "belowThreshold": (2, 12), "priceQuotation": (2, 8), "aboveThreshold": (6, 20),
    "aboveThresholdUA": (11, 22), "aboveThresholdEU": (11, 24), "reporting": (0, 2),
    "negotiation": (10, 16), "negotiation.quick": (5, 9),
}

# Contract changes: (rationaleType, Ukrainian rationale). The first change of a contract raises
# its price; VALUE_FACTORS says by how much each type multiplies the value, and a volume cut gives
# back part of the earlier raises, so an amended contract always ends above its award.
VALUE_RAISING_CHANGES = WeightedChoice([
    (("itemPriceVariation",
      "Збільшення ціни за одиницю товару до 10 відсотків пропорційно збільшенню ціни такого "
      "товару на ринку"), 85),
    (("taxRate",
      "Зміна ціни у зв’язку зі зміною ставок податків і зборів та/або умов щодо надання пільг "
      "з оподаткування"), 15),
])
OTHER_CHANGES = WeightedChoice([
    (("durationExtension",
      "Продовження строку дії договору та строку виконання зобов’язань у зв’язку з "
      "документально підтвердженими об’єктивними обставинами"), 40),
    (("volumeCuts",
      "Зменшення обсягів закупівлі з урахуванням фактичного обсягу видатків замовника"), 20),
    (("itemPriceVariation",
      "Збільшення ціни за одиницю товару пропорційно збільшенню ціни такого товару на ринку"), 25),
    (("fiscalYearExtension",
      "Продовження дії договору на строк, достатній для проведення процедури закупівлі на "
      "початку наступного року"), 15),
])
VALUE_FACTORS = {
    "itemPriceVariation": (1.02, 1.10), "taxRate": (1.01, 1.05), "durationExtension": (1.0, 1.0),
    "fiscalYearExtension": (1.0, 1.2),
}
VOLUME_CUT_GIVES_BACK = (0.2, 0.8)  # share of the raises so far that a volume cut removes
CANCELLATION_REASONS = WeightedChoice([
    (("noDemand", "Відсутність подальшої потреби в закупівлі товарів, робіт і послуг"), 45),
    (("expensesCut", "Скорочення видатків на здійснення закупівлі товарів, робіт і послуг"), 20),
    (("unFixable", "Неможливість усунення виявлених порушень законодавства у сфері публічних "
                   "закупівель"), 15),
    (("noOffer", "Подано менше двох тендерних пропозицій"), 10),
    (("forceMajeure", "Неможливість здійснення закупівлі у зв’язку з дією обставин непереборної "
                      "сили"), 10),
])
NEGOTIATION_CAUSES = WeightedChoice([
    (("noCompetition", "Відсутність конкуренції з технічних причин; роботи можуть бути "
                       "виконані лише певним суб’єктом господарювання"), 35),
    (("quick", "Нагальна потреба здійснити закупівлю у зв’язку з виникненням особливих "
               "економічних чи соціальних обставин"), 30),
    (("twiceUnsuccessful", "Двічі відмінено процедуру відкритих торгів через відсутність "
                           "достатньої кількості тендерних пропозицій"), 20),
    (("additionalPurchase", "Виникла необхідність у постачанні додаткового обсягу товару в "
                            "того самого постачальника"), 15),
])
COMPLAINT_STATUSES = WeightedChoice([
    ("resolved", 30), ("declined", 20), ("invalid", 15), ("satisfied", 15),
    ("stopped", 10), ("mistaken", 10),
])
COMPLAINT_TOPICS = [
    ("Дискримінаційні вимоги тендерної документації",
     "Замовник встановив вимоги до досвіду виконання аналогічних договорів, які обмежують "
     "конкуренцію та дискримінують учасників."),
    ("Неправомірне відхилення тендерної пропозиції",
     "Пропозицію відхилено з підстав, не передбачених тендерною документацією; просимо "
     "скасувати рішення замовника."),
    ("Недостатньо інформації",
     "Технічні вимоги не містять достатньо інформації, щоб сформувати тендерну пропозицію."),
    ("Порушення строків розгляду",
     "Замовник не розглянув тендерну пропозицію у строки, встановлені законом."),
]
BROKERS = WeightedChoice([
    ("prom.ua", 30), ("e-tender.biz", 15), ("smarttender.biz", 20), ("zakupki.prom.ua", 10),
    ("newtend.com", 8), ("izi.trade", 7), ("public-bid.com.ua", 5), ("dzo.com.ua", 5),
])

# --- native config per method type (from the API fixtures of each type) -----------------------

BASE_CONFIG = {
    "hasAuction": True, "hasAwardingOrder": True, "hasValueRestriction": False,
    "valueCurrencyEquality": True, "hasPrequalification": False, "minBidsNumber": 1,
    "hasPreSelectionAgreement": False, "hasTenderComplaints": True, "hasAwardComplaints": True,
    "hasCancellationComplaints": True, "hasValueEstimation": True,
    "hasQualificationComplaints": False, "tenderComplainRegulation": 3,
    "qualificationComplainDuration": 0, "awardComplainDuration": 5,
    "cancellationComplainDuration": 10, "clarificationUntilDuration": 3,
    "qualificationDuration": 0, "minTenderingDuration": 15, "hasEnquiries": False,
    "minEnquiriesDuration": 0, "enquiryPeriodRegulation": 3, "restricted": False,
    "hasMultiSourcing": False,
}
NO_COMPLAINTS = {
    "hasTenderComplaints": False, "hasAwardComplaints": False, "hasCancellationComplaints": False,
    "tenderComplainRegulation": 0, "awardComplainDuration": 0, "cancellationComplainDuration": 0,
    "clarificationUntilDuration": 0, "minTenderingDuration": 0, "enquiryPeriodRegulation": 0,
}
UA_RULES = {
    "hasValueRestriction": True, "minBidsNumber": 2, "tenderComplainRegulation": 4,
    "awardComplainDuration": 10, "enquiryPeriodRegulation": 10,
}
CONFIG_OVERRIDES = {
    "aboveThreshold": {},
    "aboveThresholdUA": UA_RULES,
    "aboveThresholdEU": {**UA_RULES, "hasPrequalification": True,
                         "hasQualificationComplaints": True, "qualificationComplainDuration": 5,
                         "qualificationDuration": 20, "minTenderingDuration": 30},
    "belowThreshold": {**NO_COMPLAINTS, "hasValueRestriction": True, "awardComplainDuration": 2,
                       "clarificationUntilDuration": 1, "minTenderingDuration": 2,
                       "hasEnquiries": True, "minEnquiriesDuration": 3},
    "priceQuotation": {**NO_COMPLAINTS, "hasAuction": False, "hasValueRestriction": True,
                       "hasPreSelectionAgreement": True, "minTenderingDuration": 2},
    "reporting": {**NO_COMPLAINTS, "hasAuction": False, "hasValueRestriction": True},
    "negotiation": {**NO_COMPLAINTS, "hasAuction": False, "hasValueRestriction": True,
                    "hasAwardComplaints": True, "hasCancellationComplaints": True,
                    "awardComplainDuration": 10, "cancellationComplainDuration": 10},
    "negotiation.quick": {**NO_COMPLAINTS, "hasAuction": False, "hasValueRestriction": True,
                          "hasAwardComplaints": True, "hasCancellationComplaints": True,
                          "awardComplainDuration": 3, "cancellationComplainDuration": 10},
}
NATIVE_CONFIGS = {
    (method_type, restricted): {**BASE_CONFIG, **overrides, "restricted": restricted}
    for method_type, overrides in CONFIG_OVERRIDES.items()
    for restricted in (False, True)
}

# --- places, names and documents --------------------------------------------------------------

# region -> (centre, centre adjective (feminine), postal code prefix, weight in organizations)
REGION_PLACES = {
    "Автономна Республіка Крим": ("Сімферополь", "Сімферопольська", "95", 0.2),
    "Вінницька область": ("Вінниця", "Вінницька", "21", 3.5),
    "Волинська область": ("Луцьк", "Луцька", "43", 2.5),
    "Дніпропетровська область": ("Дніпро", "Дніпровська", "49", 7),
    "Донецька область": ("Краматорськ", "Краматорська", "84", 3),
    "Житомирська область": ("Житомир", "Житомирська", "10", 3),
    "Закарпатська область": ("Ужгород", "Ужгородська", "88", 2.5),
    "Запорізька область": ("Запоріжжя", "Запорізька", "69", 4),
    "Івано-Франківська область": ("Івано-Франківськ", "Івано-Франківська", "76", 3),
    "Київська область": ("Бровари", "Броварська", "07", 5),
    "Кіровоградська область": ("Кропивницький", "Кропивницька", "25", 2.5),
    "Луганська область": ("Сєвєродонецьк", "Сєвєродонецька", "93", 1.5),
    "Львівська область": ("Львів", "Львівська", "79", 6),
    "Миколаївська область": ("Миколаїв", "Миколаївська", "54", 3),
    "Одеська область": ("Одеса", "Одеська", "65", 6),
    "Полтавська область": ("Полтава", "Полтавська", "36", 3.5),
    "Рівненська область": ("Рівне", "Рівненська", "33", 2.5),
    "Сумська область": ("Суми", "Сумська", "40", 2.5),
    "Тернопільська область": ("Тернопіль", "Тернопільська", "46", 2.5),
    "Харківська область": ("Харків", "Харківська", "61", 6),
    "Херсонська область": ("Херсон", "Херсонська", "73", 2),
    "Хмельницька область": ("Хмельницький", "Хмельницька", "29", 3),
    "Черкаська область": ("Черкаси", "Черкаська", "18", 3),
    "Чернівецька область": ("Чернівці", "Чернівецька", "58", 2),
    "Чернігівська область": ("Чернігів", "Чернігівська", "14", 2.5),
    "м. Київ": ("Київ", "Київська", "0", 12),
    "м. Севастополь": ("Севастополь", "Севастопольська", "99", 0.1),
}
OLD_REGION_SPELLING_SHARE = 0.10
VILLAGES = [
    "Петрівка", "Іванівка", "Михайлівка", "Олександрівка", "Степанівка", "Миколаївка",
    "Андріївка", "Василівка", "Григорівка", "Федорівка", "Калинівка", "Любимівка",
    "Костянтинівка", "Семенівка", "Дмитрівка", "Павлівка", "Тарасівка", "Веселинівка",
]
STREETS = [
    "вул. Шевченка", "вул. Соборна", "просп. Незалежності", "вул. Грушевського",
    "вул. Івана Франка", "вул. Лесі Українки", "вул. Героїв України", "вул. Центральна",
    "вул. Миру", "вул. Садова", "вул. Незалежності", "просп. Свободи", "вул. Богдана Хмельницького",
    "вул. Січових Стрільців", "вул. Гагаріна", "вул. Пирогова", "вул. Київська", "вул. Заводська",
    "бульв. Тараса Шевченка", "вул. Молодіжна",
]
SURNAMES = [
    "Коваленко", "Бондаренко", "Ткаченко", "Кравченко", "Шевченко", "Мельник", "Бойко",
    "Олійник", "Поліщук", "Лисенко", "Руденко", "Савченко", "Марченко", "Петренко", "Кузьменко",
    "Мороз", "Гончаренко", "Сидоренко", "Павленко", "Романенко", "Левченко", "Клименко",
]
MALE_NAMES = ["Олександр", "Сергій", "Андрій", "Володимир", "Микола", "Іван", "Юрій", "Петро"]
FEMALE_NAMES = ["Олена", "Наталія", "Тетяна", "Ірина", "Світлана", "Оксана", "Людмила", "Ганна"]
PATRONYMICS_MALE = ["Олександрович", "Іванович", "Миколайович", "Петрович", "Васильович"]
PATRONYMICS_FEMALE = ["Олександрівна", "Іванівна", "Миколаївна", "Петрівна", "Василівна"]
MAIL_DOMAINS = ["ukr.net", "gmail.com", "i.ua", "meta.ua", "email.ua"]
MOBILE_CODES = ["50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98", "99"]
BUYER_KINDS = WeightedChoice([
    ("general", 60), ("authority", 18), ("social", 7), ("special", 5), ("central", 1),
    ("defense", 6), ("other", 3),
])
# Placeholders: {centre} settlement, {adj} feminine adjective, {gen} its genitive, {masc} its
# masculine form, {reg_adj}/{reg_gen}/{reg_masc} the same for the region, {n} a number.
# How buyers shorten their names in the `name` field (the legalName stays in full).
NAME_ABBREVIATIONS = [
    ("Комунальне некомерційне підприємство", "КНП"), ("Заклад дошкільної освіти", "ЗДО"),
    ("Територіальний центр соціального обслуговування (надання соціальних послуг)", "ТЦСО"),
    ("Комунальне підприємство", "КП"), ("Комунальна установа", "КУ"),
    ("Акціонерне товариство", "АТ"), ("Державне підприємство", "ДП"),
    ("міської ради", "МР"),
    ("сільської ради", "СР"), ("обласної ради", "ОР"), ("Управління", "Упр."),
    ("Громадська організація", "ГО"), ("Благодійна організація", "БО"),
]
SHORT_BUYER_NAME_SHARE = 0.6
BUYER_NAME_TEMPLATES = {
    "general": [
        "Комунальне некомерційне підприємство «{adj} міська лікарня № {n}» {gen} міської ради",
        "Комунальне некомерційне підприємство «Центр первинної медико-санітарної допомоги № {n}» "
        "{gen} міської ради",
        "Заклад дошкільної освіти (ясла-садок) № {n} {gen} міської ради",
        "Ліцей № {n} {gen} міської ради",
        "Комунальне некомерційне підприємство «{masc} міський пологовий будинок» {gen} міської "
        "ради",
        "Комунальне некомерційне підприємство «{reg_adj} обласна клінічна лікарня» {reg_gen} "
        "обласної ради",
    ],
    "general_village": [
        "Гімназія с. {centre} {gen} сільської ради",
        "Заклад дошкільної освіти «Сонечко» {gen} сільської ради",
        "Комунальне некомерційне підприємство «Амбулаторія загальної практики сімейної медицини "
        "с. {centre}» {gen} сільської ради",
    ],
    "authority": [
        "{adj} міська рада", "Виконавчий комітет {gen} міської ради",
        "Управління освіти {gen} міської ради",
        "Департамент охорони здоров’я {reg_gen} обласної державної адміністрації",
        "{reg_adj} обласна рада",
    ],
    "authority_village": ["{adj} сільська рада", "Виконавчий комітет {gen} сільської ради"],
    "social": [
        "Територіальний центр соціального обслуговування (надання соціальних послуг) {gen} "
        "міської ради",
        "Управління соціального захисту населення {gen} міської ради",
        "Комунальна установа «{masc} міський центр соціальних служб»",
        "{reg_masc} обласний геріатричний пансіонат",
    ],
    "special": [
        "Комунальне підприємство «{centre}водоканал»", "Акціонерне товариство «{centre}обленерго»",
        "Комунальне підприємство «{centre}теплоенерго»",
    ],
    "central": [
        "Комунальне підприємство «Централізована закупівельна організація» {gen} міської ради",
        "Державне підприємство «Медичні закупівлі України»",
    ],
    "defense": [
        "Військова частина А{n4}", "Квартирно-експлуатаційний відділ м. {centre}",
        "{reg_masc} обласний територіальний центр комплектування та соціальної підтримки",
    ],
    "other": [
        "Громадська організація «{word}»", "Благодійна організація «Благодійний фонд «{word}»",
    ],
}
COMPANY_ROOTS = [
    "Медтехніка", "Фарм", "Укр", "Галич", "Поділ", "Світанок", "Енерго", "Агро", "Буд", "Мед",
    "Техно", "Профі", "Меридіан", "Волинь", "Альфа", "Оптима", "Віта", "Біо", "Еко", "Дніпро",
    "Карпати", "Інтер", "Євро", "Нова", "Лан", "Зерно", "Сан", "Дез", "Гарант", "Стандарт",
]
COMPANY_ENDINGS = [
    "сервіс", "трейд", "постач", "інвест", "буд", "мед", "фарм", "плюс", " Груп", "-Україна",
    "-Центр", "лайн", "систем", "техсервіс", "комплект", "-Медікал", "-Пром", "ресурс",
]
# short form template, legal form template (upper-cased word), weight
COMPANY_FORMS = WeightedChoice([
    (("ТОВ «{word}»", "ТОВАРИСТВО З ОБМЕЖЕНОЮ ВІДПОВІДАЛЬНІСТЮ «{word_upper}»"), 55),
    (("ТОВ \"{word}\"", "Товариство з обмеженою відповідальністю \"{word}\""), 20),
    (("ПП «{word}»", "ПРИВАТНЕ ПІДПРИЄМСТВО «{word_upper}»"), 15),
    (("ПрАТ «{word}»", "ПРИВАТНЕ АКЦІОНЕРНЕ ТОВАРИСТВО «{word_upper}»"), 5),
    (("ДП «{word}»", "Державне підприємство «{word}»"), 5),
])
SUPPLIER_SCALES = WeightedChoice([("micro", 45), ("sme", 40), ("mid", 10), ("large", 5)])

GOODS_UNITS = [
    ("H87", "штука"), ("KGM", "кілограм"), ("LTR", "літр"), ("PK", "упаковка"), ("BX", "ящик"),
    ("MTR", "метр"), ("MTK", "метр квадратний"), ("SET", "набір"), ("TNE", "тонна"),
    ("PR", "пара"), ("MTQ", "метр кубічний"), ("KWH", "кіловат-година"),
]
SERVICE_UNITS = [("E48", "послуга"), ("E48", "послуга"), ("MON", "місяць")]
WORKS_UNITS = [("E48", "послуга"), ("LS", "роботи")]
ITEM_SUFFIXES = [
    " (код за ДК 021:2015 {code})", " згідно з технічним завданням",
    " (поставка партіями за заявкою замовника)", " — {quantity} {unit}",
    " (відповідно до медико-технічних вимог)", " для потреб закладу",
]
TITLE_TEMPLATES = [
    "{name}", "{name}", "ДК 021:2015: {code} — {name}", "{group} (ДК 021:2015: {code} — {name})",
    "Закупівля: {name}", "{name} ({locality})",
]
DESCRIPTION_SHARE = 0.6
DESCRIPTION_SENTENCES = [
    "Технічні, якісні та кількісні характеристики предмета закупівлі визначені у Додатку 2 до "
    "тендерної документації.",
    "Більш детальна інформація в тендерній документації. Проєкт договору в тендерній документації.",
    "Закупівля здійснюється за кошти місцевого бюджету відповідно до річного плану закупівель.",
    "Місце поставки товару (виконання робіт, надання послуг): {locality}, {street}.",
    "Строк поставки: до {deadline} включно, за заявками замовника.",
    "Ціна тендерної пропозиції повинна включати витрати на транспортування, страхування, "
    "навантаження та розвантаження.",
]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TENDER_DOCUMENTS = [
    ("Тендерна документація.pdf", "application/pdf", "biddingDocuments"),
    ("Оголошення про проведення закупівлі.pdf", "application/pdf", "notice"),
    ("Проєкт договору.docx", DOCX, "contractProforma"),
    ("Технічні вимоги (Додаток 2).docx", DOCX, "technicalSpecifications"),
    ("Обґрунтування характеристик.pdf", "application/pdf", "technicalSpecifications"),
    ("Кваліфікаційні критерії (Додаток 1).pdf", "application/pdf", "eligibilityCriteria"),
    ("sign.p7s", "application/pkcs7-signature", "notice"),
]
NATIVE_DOCS_HOST = "https://public-docs.prozorro.gov.ua/get/"
OCDS_DOCS_HOST = "https://public.docs.openprocurement.org/get/"


# --- reference data ----------------------------------------------------------------------------

def find_reference(candidates):
    """Return the first reference file that exists (the project's copy, then the shared one)."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise SystemExit(f"reference file not found; looked at {', '.join(map(str, candidates))}")


def load_cpv_pools(path):
    """Read the CPV CSV into (general codes, health/social codes, codes by group, names by digits).

    General codes are the ``category`` and ``subcategory`` levels; health/social codes are every
    level below ``division`` under the 33, 85 and 98133 prefixes. A code is ``(code, name_uk)``.
    """
    general, health, names = [], [], {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            digits, level, entry = row["digits8"], row["level"], (row["code"], row["name_uk"])
            names[digits] = row["name_uk"]
            if level in ("category", "subcategory"):
                general.append(entry)
            if level in ("group", "class", "category", "subcategory") and digits.startswith(
                    HEALTH_SOCIAL_PREFIXES):
                health.append(entry)
    by_group = {}
    for entry in dict.fromkeys(general + health):
        by_group.setdefault(entry[0][:3], []).append(entry)
    return general, health, by_group, names


def load_region_names(path):
    """The 27 official region names ProZorro uses in addresses."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def old_region_spellings(region):
    """Free-text spellings that older records use for a region."""
    if region == "м. Київ":
        return ["Київ", "м.Київ"]
    if region.endswith(" область"):
        return [region.removesuffix(" область") + " обл."]
    if region.startswith("м. "):
        return [region.removeprefix("м. ")]
    return ["АР Крим"]


# --- time --------------------------------------------------------------------------------------

def last_sunday(year, month):
    day = datetime(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


ONE_HOUR = timedelta(hours=1)
# Per year: Kyiv clocks jump from 03:00 to 04:00 on the last Sunday of March and fall back from
# 04:00 to 03:00 on the last Sunday of October.
SUMMER_TIME = {
    year: (last_sunday(year, 3).replace(hour=3), last_sunday(year, 3).replace(hour=4),
           last_sunday(year, 10).replace(hour=4))
    for year in range(RANGE_START.year - 1, RANGE_END.year + 3)
}


def kyiv_iso(moment):
    """ISO 8601 text of a Kyiv wall-clock time with its +02:00 (winter) or +03:00 (summer)
    offset. Times drawn inside the spring gap are moved past it, which keeps their order."""
    gap_start, gap_end, summer_end = SUMMER_TIME[moment.year]
    if moment < gap_start or moment >= summer_end:
        return moment.isoformat() + "+02:00"
    if moment < gap_end:
        moment += ONE_HOUR
    return moment.isoformat() + "+03:00"


def midnight(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def random_moment(rng, start, end):
    return start + timedelta(seconds=rng.random() * (end - start).total_seconds())


# --- pools -------------------------------------------------------------------------------------

class Organization:
    """One buyer or supplier, with its JSON fragments built once and shared by every record."""

    __slots__ = ("party_id", "kind", "ocds_ref", "ocds_party", "native")

    def __init__(self, edrpou, name, legal_name, address, contact_point, kind=None, scale=None):
        self.party_id = "UA-EDR-" + edrpou
        self.kind = kind
        identifier = {"scheme": "UA-EDR", "id": edrpou, "legalName": legal_name}
        self.ocds_ref = {"id": self.party_id, "name": name}
        self.ocds_party = {"id": self.party_id, "name": name, "identifier": identifier,
                           "address": address, "contactPoint": contact_point}
        self.native = {"name": name, "identifier": identifier, "address": address,
                       "contactPoint": contact_point}
        if kind is not None:
            self.ocds_party["details"] = {"kind": kind}
            self.native["kind"] = kind
        if scale is not None:
            self.native["scale"] = scale


class Place:
    """A settlement an organization sits in, with the word forms its name templates need."""

    __slots__ = ("region_written", "locality", "forms", "postal_prefix", "is_village")

    def __init__(self, rng, region, region_written):
        centre, centre_adj, postal_prefix, _ = REGION_PLACES[region]
        self.region_written, self.postal_prefix = region_written, postal_prefix
        self.is_village = region != "м. Київ" and rng.random() < 0.3
        if self.is_village:
            settlement = pick(rng, VILLAGES)
            adj = settlement[:-2] + "ська"  # Петрівка -> Петрівська
            self.locality = "с. " + settlement
        else:
            settlement, adj = centre, centre_adj
            self.locality = ("м. " if rng.random() < 0.7 else "") + centre
        reg_adj = region.split()[0] if region.endswith(" область") else centre_adj
        self.forms = {"centre": settlement, "adj": adj, "gen": adj[:-1] + "ої",
                      "masc": adj[:-1] + "ий", "reg_adj": reg_adj,
                      "reg_gen": reg_adj[:-1] + "ої", "reg_masc": reg_adj[:-1] + "ий"}


class Pools:
    """Everything drawn once per run: CPV codes, regions, buyers and suppliers."""

    def __init__(self, rng):
        general, health, by_group, names = load_cpv_pools(find_reference(CPV_CANDIDATES))
        self.cpv_general, self.cpv_health, self.cpv_by_group = general, health, by_group
        self.cpv_names = names
        regions = load_region_names(find_reference(REGIONS_CANDIDATES))
        unknown = [name for name in regions if name not in REGION_PLACES]
        if unknown:
            raise SystemExit(f"regions missing from REGION_PLACES: {', '.join(unknown)}")
        self.regions = WeightedChoice([(name, REGION_PLACES[name][3]) for name in regions])
        self.used_edrpou = set()
        self.buyers = [self.make_buyer(rng, BUYER_KINDS.pick(rng)) for _ in range(BUYER_COUNT)]
        self.defense_buyers = [buyer for buyer in self.buyers if buyer.kind == "defense"]
        self.suppliers = [self.make_supplier(rng) for _ in range(SUPPLIER_COUNT)]

    def new_edrpou(self, rng):
        while True:
            edrpou = f"{between(rng, 100_000, 45_000_000):08d}"
            if edrpou not in self.used_edrpou:
                self.used_edrpou.add(edrpou)
                return edrpou

    def make_place(self, rng):
        region = self.regions.pick(rng)
        written = region
        if rng.random() < OLD_REGION_SPELLING_SHARE:
            variants = old_region_spellings(region)
            written = pick(rng, variants)
        return Place(rng, region, written)

    @staticmethod
    def make_address(rng, place):
        if place.postal_prefix == "0":  # Kyiv city: 01001-04199
            postal_code = f"0{between(rng, 1001, 4200):04d}"
        else:
            postal_code = f"{place.postal_prefix}{between(rng, 0, 1000):03d}"
        street = f"{pick(rng, STREETS)}, {between(rng, 1, 180)}"
        if rng.random() < 0.2:
            street += f", оф. {between(rng, 1, 400)}"
        return {"streetAddress": street, "locality": place.locality, "region": place.region_written,
                "postalCode": postal_code, "countryName": "Україна"}

    @staticmethod
    def make_contact_point(rng, edrpou):
        if rng.random() < 0.5:
            first, patronymic = pick(rng, MALE_NAMES), pick(rng, PATRONYMICS_MALE)
        else:
            first, patronymic = pick(rng, FEMALE_NAMES), pick(rng, PATRONYMICS_FEMALE)
        contact = {
            "name": f"{pick(rng, SURNAMES)} {first} {patronymic}",
            "email": f"{pick(rng, ('zakupivli', 'tender', 'office', 'buh', 'info'))}.{edrpou}"
                     f"@{pick(rng, MAIL_DOMAINS)}",
            "telephone": f"+380{pick(rng, MOBILE_CODES)}{between(rng, 0, 10 ** 7):07d}",
        }
        if rng.random() < 0.25:
            contact["url"] = f"https://org{edrpou}.gov.ua"
        return contact

    def make_buyer(self, rng, kind):
        place = self.make_place(rng)
        if kind in ("general", "authority") and place.is_village:
            templates = BUYER_NAME_TEMPLATES[kind + "_village"]
        else:
            templates = BUYER_NAME_TEMPLATES[kind]
        name = pick(rng, templates).format(
            n=between(rng, 1, 41), n4=between(rng, 1000, 9999),
            word=pick(rng, COMPANY_ROOTS) + pick(rng, COMPANY_ENDINGS), **place.forms)
        legal_name = name
        if rng.random() < SHORT_BUYER_NAME_SHARE:
            for long_form, short_form in NAME_ABBREVIATIONS:
                name = name.replace(long_form, short_form)
        edrpou = self.new_edrpou(rng)
        return Organization(edrpou, name, legal_name, self.make_address(rng, place),
                            self.make_contact_point(rng, edrpou), kind=kind)

    def make_supplier(self, rng):
        short_form, legal_form = COMPANY_FORMS.pick(rng)
        word = pick(rng, COMPANY_ROOTS) + pick(rng, COMPANY_ENDINGS)
        edrpou = self.new_edrpou(rng)
        place = self.make_place(rng)
        return Organization(edrpou, short_form.format(word=word),
                            legal_form.format(word=word, word_upper=word.upper()),
                            self.make_address(rng, place), self.make_contact_point(rng, edrpou),
                            scale=SUPPLIER_SCALES.pick(rng))

    def pick_cpv(self, rng, same_group_as=None):
        """A CPV code: 70% from the group of ``same_group_as`` if given, else the health/social
        pool with probability HEALTH_SOCIAL_SHARE, else the general pool."""
        if same_group_as is not None and rng.random() < 0.7:
            pool = self.cpv_by_group[same_group_as[:3]]
        elif rng.random() < HEALTH_SOCIAL_SHARE:
            pool = self.cpv_health
        else:
            pool = self.cpv_general
        return pick(rng, pool)


def skewed_pick(rng, pool):
    """Zipf-like pick: the first entries of the pool come up far more often than the rest."""
    return pool[int(len(pool) * rng.random() ** 3)]


def distinct_suppliers(rng, pools, count):
    chosen = []
    while len(chosen) < count:
        supplier = skewed_pick(rng, pools.suppliers)
        if supplier not in chosen:
            chosen.append(supplier)
    return chosen


def hex_id(rng):
    return f"{rng.getrandbits(128):032x}"


def money(amount):
    return round(amount, 2)


# --- the process plan: what happened, shared by both renderings --------------------------------

class Item:
    __slots__ = ("id", "code", "cpv_name", "description", "quantity", "unit", "unit_price",
                 "lot_id", "delivery_end", "address")


class Lot:
    __slots__ = ("id", "title", "description", "value")


class Bid:
    __slots__ = ("id", "date", "supplier", "lot_values", "disqualified")


class Award:
    __slots__ = ("id", "date", "status", "supplier", "amount", "bid_id", "lot_id")


class Contract:
    __slots__ = ("id", "contract_id", "number", "award", "status", "signed_amount", "amount",
                 "date_signed", "period_start", "period_end", "amendments")


class Amendment:
    __slots__ = ("id", "date", "rationale_type", "rationale", "amount_before", "amount_after")


class Cancellation:
    __slots__ = ("id", "date", "reason_type", "reason")


class Complaint:
    __slots__ = ("id", "status", "author", "title", "description", "submitted", "decided")


class Process:
    """One procurement process in neutral form; the renderers turn it into OCDS or native JSON."""

    __slots__ = ("tender_id", "hex_id", "method_type", "method", "status", "category", "buyer",
                 "owner", "title", "description", "currency", "value", "created", "enquiry_end",
                 "tender_start", "tender_end", "items", "lots", "bids", "awards", "contracts",
                 "cancellation", "complaint", "cause", "restricted", "status_date", "date_modified",
                 "release_date")


def tender_id_for(created, sequence, native):
    """``UA-YYYY-MM-DD-NNNNNN-x``, unique through the counter. The letter counts millions and is
    a, c, e... for OCDS and b, d, f... for native output, so files of both kinds loaded into one
    database never share an ocid by chance."""
    millions, rest = divmod(sequence, 1_000_000)
    return f"UA-{created.isoformat()[:10]}-{rest:06d}-{chr(ord('a') + 2 * millions + native)}"


def draw_created(rng, status):
    """Creation time; processes still under way are recent, finished ones leave room for the
    rest of their timeline before RANGE_END."""
    if status == "active.tendering":
        return random_moment(rng, RANGE_END - timedelta(days=70), RANGE_END - timedelta(days=40))
    if status in ("active.awarded", "active"):
        return random_moment(rng, RANGE_END - timedelta(days=120), RANGE_END - timedelta(days=85))
    return random_moment(rng, RANGE_START, RANGE_END - timedelta(days=95))


def draw_value(rng, method_type):
    amount = math.exp(rng.gauss(math.log(MEDIAN_VALUE[method_type]), AMOUNT_SIGMA))
    return min(max(amount, MIN_AMOUNT), MAX_AMOUNT)


def plan_items(rng, pools, process, item_count, lot_ids):
    """Items of one CPV family mostly (70% share the first item's group), splitting the value."""
    first_code = None
    items = []
    weights = [0.2 + rng.random() for _ in range(item_count)]
    weight_total = sum(weights)
    for index, weight in enumerate(weights):
        code, cpv_name = pools.pick_cpv(rng, first_code)
        first_code = first_code or code
        item = Item()
        item.id, item.code, item.cpv_name = hex_id(rng), code, cpv_name
        division = code[:2]
        if division == "45":
            item.unit = pick(rng, WORKS_UNITS)
            item.quantity = 1
        elif division >= "50":
            item.unit = pick(rng, SERVICE_UNITS)
            item.quantity = 12 if item.unit[0] == "MON" else 1
        else:
            item.unit = pick(rng, GOODS_UNITS)
            item.quantity = max(1, int(math.exp(rng.gauss(3.5, 1.6))))
        item.unit_price = money(process.value * weight / weight_total / item.quantity) or 0.01
        description = cpv_name
        if rng.random() < 0.4:
            description += pick(rng, ITEM_SUFFIXES).format(
                code=code, quantity=item.quantity, unit=item.unit[1])
        item.description = description
        item.lot_id = lot_ids[index % len(lot_ids)] if lot_ids else None
        item.delivery_end = min(midnight(process.created) + timedelta(days=between(rng, 15, 130)),
                                midnight(RANGE_END) - timedelta(days=1))
        item.address = process.buyer.native["address"]
        items.append(item)
    return items


def plan_title_and_description(rng, pools, process):
    """Title from the first item's code; a description (one or two sentences) on most tenders."""
    first = process.items[0]
    group = pools.cpv_names.get(first.code[:3] + "00000", first.cpv_name)
    address = process.buyer.native["address"]
    title = pick(rng, TITLE_TEMPLATES).format(
        name=first.cpv_name, code=first.code, group=group, locality=address["locality"])
    if rng.random() >= DESCRIPTION_SHARE:
        return title, None
    sentences = rotated_sample(rng, DESCRIPTION_SENTENCES, 1 + (rng.random() < 0.3))
    deadline = first.delivery_end.strftime("%d.%m.%Y")
    description = " ".join(sentences).format(
        locality=address["locality"], street=address["streetAddress"], deadline=deadline)
    return title, description


def plan_lots(process, lot_ids):
    lots = []
    for number, lot_id in enumerate(lot_ids, 1):
        lot_items = [item for item in process.items if item.lot_id == lot_id]
        lot = Lot()
        lot.id, lot.title = lot_id, f"Лот № {number}: {lot_items[0].cpv_name}"
        lot.description = f"{lot_items[0].description}; кількість позицій: {len(lot_items)}"
        lot.value = money(sum(item.unit_price * item.quantity for item in lot_items))
        lots.append(lot)
    return lots


def plan_bids(rng, pools, process):
    """Bids below the expected value; for lots, each bidder offers on a subset of the lots."""
    status = process.status
    if status in ("complete", "active.awarded"):
        count = TENDERER_COUNT.pick(rng)
    elif status == "unsuccessful":
        count = UNSUCCESSFUL_TENDERER_COUNT.pick(rng)
    elif status == "cancelled" and rng.random() < 0.25:
        count = between(rng, 1, 4)
    else:
        return []
    lot_values_of = [(lot.id, lot.value) for lot in process.lots] or [(None, process.value)]
    bids = []
    for supplier in distinct_suppliers(rng, pools, count):
        bid = Bid()
        bid.id, bid.supplier, bid.disqualified = hex_id(rng), supplier, False
        bid.date = random_moment(rng, process.tender_start, process.tender_end)
        offered = [entry for entry in lot_values_of if rng.random() < 0.75] or lot_values_of[:1]
        bid.lot_values = [(lot_id, money(value * (0.70 + 0.299 * rng.random())))
                          for lot_id, value in offered]
        bids.append(bid)
    bids.sort(key=lambda bid: bid.date)
    return bids


def new_award(rng, date, status, supplier, amount, bid_id, lot_id):
    award = Award()
    award.id, award.date, award.status, award.supplier = hex_id(rng), date, status, supplier
    award.amount, award.bid_id, award.lot_id = amount, bid_id, lot_id
    return award


def plan_competitive_awards(rng, process):
    """Lowest price wins; sometimes the cheapest bidder is disqualified first."""
    if not process.bids or process.status == "cancelled":
        return []
    awards = []
    date = process.tender_end + timedelta(hours=1 + rng.random() * 96)
    for lot_id in [lot.id for lot in process.lots] or [None]:
        ranked = sorted(((amount, bid) for bid in process.bids
                         for bid_lot, amount in bid.lot_values if bid_lot == lot_id),
                        key=lambda pair: pair[0])
        if not ranked:
            continue
        if process.status == "unsuccessful":
            for amount, bid in ranked:
                awards.append(new_award(rng, date, "unsuccessful", bid.supplier, amount, bid.id,
                                        lot_id))
                bid.disqualified = True
                date += timedelta(days=1 + rng.random() * 3)
            continue
        if len(ranked) >= 2 and rng.random() < 0.12:
            amount, bid = ranked.pop(0)
            awards.append(new_award(rng, date, "unsuccessful", bid.supplier, amount, bid.id,
                                    lot_id))
            bid.disqualified = True
            date += timedelta(days=1 + rng.random() * 4)
        amount, bid = ranked[0]
        if rng.random() < 0.03:
            awards.append(new_award(rng, date, "cancelled", bid.supplier, amount, bid.id, lot_id))
            date += timedelta(days=1 + rng.random() * 2)
        awards.append(new_award(rng, date, "active", bid.supplier, amount, bid.id, lot_id))
    return awards


def plan_limited_awards(rng, pools, process):
    if process.status == "cancelled":
        return []
    date = process.created + timedelta(minutes=10 + rng.random() * 4000)
    supplier = skewed_pick(rng, pools.suppliers)
    lot_ids = [lot.id for lot in process.lots] or [None]
    awards = []
    for lot_id in lot_ids:
        share = next((lot.value for lot in process.lots if lot.id == lot_id), process.value)
        award = new_award(rng, date, "active", supplier, money(share * (0.9 + 0.1 * rng.random())),
                          None, lot_id)
        awards.append(award)
    return awards


def plan_amendments(rng, contract):
    """1-3 changes; the first raises the price, the rest are any common rationale."""
    window_start = contract.date_signed + timedelta(days=7)
    window_days = (contract.period_end - window_start).total_seconds() / 86400
    count = AMENDMENT_COUNT.pick(rng)
    if window_days < count:
        return []
    dates = sorted(window_start + timedelta(days=rng.random() * window_days) for _ in range(count))
    amendments, awarded, amount = [], contract.amount, contract.amount
    for index, date in enumerate(dates):
        amendment = Amendment()
        amendment.rationale_type, amendment.rationale = (
            VALUE_RAISING_CHANGES if index == 0 else OTHER_CHANGES).pick(rng)
        amendment.id, amendment.date, amendment.amount_before = hex_id(rng), date, amount
        if amendment.rationale_type == "volumeCuts":
            low, high = VOLUME_CUT_GIVES_BACK
            amount = money(amount - (amount - awarded) * (low + (high - low) * rng.random()))
        else:
            low, high = VALUE_FACTORS[amendment.rationale_type]
            amount = money(amount * (low + (high - low) * rng.random()))
        amendment.amount_after = amount
        amendments.append(amendment)
    contract.amount = amount
    return amendments


def plan_contracts(rng, process):
    contracts = []
    delay_low, delay_high = SIGNING_DAYS[process.method_type]
    for award in process.awards:
        if award.status != "active":
            continue
        contract = Contract()
        contract.id, contract.award = hex_id(rng), award
        contract.signed_amount = contract.amount = award.amount
        contract.contract_id = f"{process.tender_id}-a{len(contracts) + 1}"
        contract.number = f"{between(rng, 1, 999)}/{between(rng, 1, 99)}"
        contract.amendments = []
        if process.status in ("active.awarded", "active"):
            contract.status, contract.date_signed = "pending", None
            contract.period_start = contract.period_end = None
            contracts.append(contract)
            continue
        contract.date_signed = award.date + timedelta(
            days=delay_low + rng.random() * (delay_high - delay_low), minutes=5)
        contract.period_start = midnight(contract.date_signed)
        end_year = contract.date_signed.year
        if contract.date_signed.month >= 10 and rng.random() < 0.5:
            end_year += 1  # late-year contracts often run through the next year
        contract.period_end = min(datetime(end_year, 12, 31), RANGE_END - timedelta(days=1))
        if rng.random() < AMENDED_CONTRACT_SHARE:
            contract.amendments = plan_amendments(rng, contract)
        ended = contract.period_end < RANGE_END - timedelta(days=1)
        contract.status = "terminated" if ended and rng.random() < 0.3 else "active"
        contracts.append(contract)
    return contracts


def plan_process(rng, pools, sequence, native):
    """Draw one whole procurement process. ``native`` adds what only the ProZorro API shows:
    lots, restricted tenders, cancellations, complaints and negotiation causes."""
    process = Process()
    method_type, method = METHOD_TYPES.pick(rng)
    competitive = method != "limited"
    status = (COMPETITIVE_STATUSES if competitive else LIMITED_STATUSES).pick(rng)
    created = draw_created(rng, status)
    if method_type == "aboveThreshold" and (created.year < 2023 or rng.random() < 0.15):
        method_type = "aboveThresholdUA"
    process.method_type, process.method, process.status, process.created = (
        method_type, method, status, created)
    process.tender_id = tender_id_for(created, sequence, native)
    process.hex_id = hex_id(rng)
    process.restricted = native and rng.random() < RESTRICTED_SHARE
    buyer_pool = pools.defense_buyers if process.restricted else pools.buyers
    process.buyer = skewed_pick(rng, buyer_pool)
    process.owner = BROKERS.pick(rng)
    process.value = draw_value(rng, method_type)
    process.currency = "UAH"
    if rng.random() < 0.01:
        process.currency, rate = FOREIGN_CURRENCIES.pick(rng)
        process.value = max(process.value / rate, MIN_AMOUNT)
    process.value = money(process.value)

    if competitive:
        if method_type == "belowThreshold":
            process.enquiry_end = midnight(created) + timedelta(days=between(rng, 3, 6))
            process.tender_start = process.enquiry_end
        else:
            process.enquiry_end = None
            process.tender_start = created + timedelta(minutes=1 + rng.random() * 600)
        low, high = TENDER_PERIOD_DAYS[method_type]
        process.tender_end = (process.tender_start + timedelta(days=between(rng, low, high + 1))
                              ).replace(minute=0, second=0, microsecond=0)
    else:
        process.enquiry_end = process.tender_start = process.tender_end = None

    item_count = ITEM_COUNT.pick(rng)
    with_lots = native and method_type != "reporting" and rng.random() < LOT_SHARE_OF_NON_REPORTING
    lot_count = min(LOT_COUNT.pick(rng), item_count) if with_lots else 0
    lot_ids = [hex_id(rng) for _ in range(lot_count)]
    process.items = plan_items(rng, pools, process, item_count, lot_ids)
    process.lots = plan_lots(process, lot_ids)
    process.title, process.description = plan_title_and_description(rng, pools, process)
    process.category = ("works" if process.items[0].code[:2] == "45"
                        else "services" if process.items[0].code[:2] >= "50" else "goods")

    process.bids = plan_bids(rng, pools, process) if competitive else []
    process.awards = (plan_competitive_awards(rng, process) if competitive
                      else plan_limited_awards(rng, pools, process))
    process.contracts = plan_contracts(rng, process)

    process.cause = NEGOTIATION_CAUSES.pick(rng) if native and method_type.startswith(
        "negotiation") else None
    process.cancellation = plan_cancellation(rng, process) if status == "cancelled" else None
    process.complaint = (plan_complaint(rng, pools, process)
                         if native and competitive and rng.random() < COMPLAINT_SHARE_OF_COMPETITIVE
                         else None)
    events = [created]
    events += [bid.date for bid in process.bids] + [award.date for award in process.awards]
    events += [contract.date_signed for contract in process.contracts if contract.date_signed]
    if process.cancellation:
        events.append(process.cancellation.date)
    if process.complaint:
        events.append(process.complaint.decided or process.complaint.submitted)
    if process.tender_end and status not in ("active.tendering", "cancelled"):
        events.append(process.tender_end)
    process.status_date = max(events)
    # The tender changes last with its status; the compiled release also with contract changes.
    settle = timedelta(minutes=1 + rng.random() * 180)
    latest = RANGE_END - timedelta(seconds=1)
    process.date_modified = min(process.status_date + settle, latest)
    amendment_dates = [amendment.date for contract in process.contracts
                       for amendment in contract.amendments]
    process.release_date = min(max([process.status_date] + amendment_dates) + settle, latest)
    return process


def plan_cancellation(rng, process):
    """Cancelled during tendering when nobody bid yet, otherwise after the tender period."""
    cancellation = Cancellation()
    cancellation.id = hex_id(rng)
    cancellation.reason_type, cancellation.reason = CANCELLATION_REASONS.pick(rng)
    if process.tender_end is None:
        cancellation.date = process.created + timedelta(days=1 + rng.random() * 10)
    elif process.bids:
        cancellation.date = process.tender_end + timedelta(hours=2 + rng.random() * 100)
    else:
        cancellation.date = random_moment(rng, process.tender_start, process.tender_end)
    return cancellation


def plan_complaint(rng, pools, process):
    """A complaint (or a claim, below the thresholds) filed during the tender period."""
    complaint = Complaint()
    complaint.id, complaint.status = hex_id(rng), COMPLAINT_STATUSES.pick(rng)
    complaint.author = skewed_pick(rng, pools.suppliers)
    complaint.title, complaint.description = pick(rng, COMPLAINT_TOPICS)
    complaint.submitted = random_moment(rng, process.tender_start, process.tender_end)
    complaint.decided = (complaint.submitted + timedelta(days=2 + rng.random() * 3)
                         if complaint.status in ("resolved", "declined", "satisfied") else None)
    return complaint


# --- rendering ---------------------------------------------------------------------------------

def document(rng, template, published, host, native):
    title, file_format, document_type = template
    signature = base64.b64encode(rng.randbytes(32)).decode("ascii")
    signature = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    date = kyiv_iso(published)
    if native:
        return {"id": hex_id(rng), "documentType": document_type,
                "hash": "md5:" + hex_id(rng), "title": title, "format": file_format,
                "url": f"{host}{hex_id(rng)}?Signature={signature}&KeyID=52462340",
                "documentOf": "tender", "datePublished": date, "dateModified": date,
                "author": "tender_owner"}
    return {"id": hex_id(rng), "title": title,
            "url": f"{host}{hex_id(rng)}?KeyID=52462340&Signature={signature}",
            "format": file_format, "datePublished": date}


def tender_documents(rng, process, host, native):
    published = process.created + timedelta(seconds=rng.random() * 40)
    return [document(rng, template, published + timedelta(seconds=index * 2), host, native)
            for index, template in enumerate(
                rotated_sample(rng, TENDER_DOCUMENTS, TENDER_DOCUMENT_COUNT.pick(rng)))]


def value_of(amount, currency, native):
    if native:
        return {"amount": amount, "currency": currency, "valueAddedTaxIncluded": True}
    return {"amount": amount, "currency": currency}


def period(start, end):
    return {"startDate": kyiv_iso(start), "endDate": kyiv_iso(end)}


def render_tender_item(item, native):
    """An item as the tender lists it. The API's classification carries the code's name;
    ProZorro's OCDS publication keeps only scheme and id."""
    classification = {"scheme": "ДК021", "id": item.code}
    if native:
        classification["description"] = item.cpv_name
    rendered = {
        "id": item.id, "description": item.description, "classification": classification,
        "quantity": float(item.quantity) if native else item.quantity,
        "unit": {"code": item.unit[0], "name": item.unit[1]},
        "deliveryDate": {"endDate": kyiv_iso(item.delivery_end)},
        "deliveryAddress": item.address,
    }
    if item.lot_id:
        rendered["relatedLot"] = item.lot_id
    return rendered


def render_ocds_contract_item(item, currency, price_factor):
    """A contract item, keyed to the tender item by id; the unit carries the agreed unit price
    (``unit.value``)."""
    unit = {"code": item.unit[0], "name": item.unit[1],
            "value": {"amount": money(item.unit_price * price_factor), "currency": currency}}
    return {"id": item.id, "classification": {"scheme": "ДК021", "id": item.code},
            "quantity": item.quantity, "unit": unit}


def render_ocds_release(rng, process):
    """An OCDS 1.1 compiled release in the shape ProZorro publishes (see the module docstring)."""
    ocid = OCID_PREFIX + process.tender_id
    date = kyiv_iso(process.release_date)
    currency = process.currency
    buyer = process.buyer
    items = [render_tender_item(item, False) for item in process.items]

    roles_by_party = {}
    for bid in process.bids:
        roles_by_party.setdefault(bid.supplier.party_id, (bid.supplier, ["tenderer"]))
    for award in process.awards:
        supplier = award.supplier
        _, roles = roles_by_party.setdefault(supplier.party_id, (supplier, []))
        if award.status == "active" and "supplier" not in roles:
            roles.append("supplier")
    parties = [{**buyer.ocds_party, "roles": ["procuringEntity", "buyer"]}]
    parties += [{**org.ocds_party, "roles": roles} for org, roles in roles_by_party.values()]

    tender = {
        "id": process.hex_id, "tenderID": process.tender_id, "title": process.title,
        "status": OCDS_TENDER_STATUS[process.status],
        "currentStage": process.status, "procurementMethod": process.method,
        "procurementMethodDetails": process.method_type,
        "procurementMethodType": process.method_type,  # where ProZorro's own OCDS puts it
        "mainProcurementCategory": process.category,
        "value": value_of(process.value, currency, False),
        "procuringEntity": buyer.ocds_ref, "items": items,
        "documents": tender_documents(rng, process, OCDS_DOCS_HOST, False),
    }
    if process.description:
        tender["description"] = process.description
    if process.tender_start is not None:
        tender["tenderPeriod"] = period(process.tender_start, process.tender_end)
        tender["awardCriteria"] = "lowestCost"
        tender["submissionMethod"] = ["electronicAuction"]
        tender["numberOfTenderers"] = len(process.bids)

    release = {
        "ocid": ocid, "id": f"{ocid}-{date}", "date": date, "tag": ["compiled"],
        "initiationType": "tender", "language": "uk", "parties": parties,
        "buyer": buyer.ocds_ref, "tender": tender,
    }
    if process.bids:
        release["bids"] = {"details": [
            {"id": bid.id, "date": kyiv_iso(bid.date),
             "status": "disqualified" if bid.disqualified else "valid",
             "tenderers": [bid.supplier.ocds_ref],
             "value": value_of(bid.lot_values[0][1], currency, False)}
            for bid in process.bids]}
    if process.awards:
        release["awards"] = [render_ocds_award(award, process) for award in process.awards]
    if process.contracts:
        release["contracts"] = [render_ocds_contract(contract, process)
                                for contract in process.contracts]
    return release


def render_ocds_award(award, process):
    return {
        "id": award.id, "status": award.status, "date": kyiv_iso(award.date),
        "value": value_of(award.amount, process.currency, False),
        "suppliers": [award.supplier.ocds_ref],
    }


def render_ocds_contract(contract, process):
    award = contract.award
    price_factor = award.amount / process.value
    rendered = {
        "id": contract.id, "awardID": award.id, "contractID": contract.contract_id,
        "contractNumber": contract.number, "status": contract.status,
        "value": value_of(contract.amount, process.currency, False),
        "items": [render_ocds_contract_item(item, process.currency, price_factor)
                  for item in process.items],
    }
    if contract.date_signed is not None:
        rendered["dateSigned"] = kyiv_iso(contract.date_signed)
        rendered["period"] = period(contract.period_start, contract.period_end)
    if contract.amendments:
        # OCDS 1.1 amendments carry no values, so the old and new price go in the description;
        # rationaleTypes is ProZorro's change field, kept for the contract_changes table.
        rendered["amendments"] = [
            {"id": amendment.id, "date": kyiv_iso(amendment.date),
             "rationale": amendment.rationale,
             "description": f"Ціна договору змінена з {amendment.amount_before:.2f} на "
                            f"{amendment.amount_after:.2f} {process.currency} (додаткова угода "
                            f"№ {number} від {amendment.date:%d.%m.%Y})",
             "rationaleTypes": [amendment.rationale_type]}
            for number, amendment in enumerate(contract.amendments, 1)]
    return rendered


def render_native_envelope(rng, process):
    """A ProZorro API tender envelope ``{"data": tender, "config": config}``."""
    currency = process.currency
    tender = {
        "id": process.hex_id, "tenderID": process.tender_id,
        "date": kyiv_iso(process.status_date), "dateModified": kyiv_iso(process.date_modified),
        "dateCreated": kyiv_iso(process.created), "owner": process.owner,
        "title": process.title, "status": process.status,
        "procurementMethod": process.method, "procurementMethodType": process.method_type,
        "mainProcurementCategory": process.category,
        "value": value_of(process.value, currency, True),
        "procuringEntity": process.buyer.native,
        "items": [render_tender_item(item, True) for item in process.items],
        "documents": tender_documents(rng, process, NATIVE_DOCS_HOST, True),
    }
    if process.description:
        tender["description"] = process.description
    config = NATIVE_CONFIGS[(process.method_type, process.restricted)]
    if process.tender_start is not None:
        tender["awardCriteria"] = "lowestCost"
        if config["hasAuction"]:
            tender["submissionMethod"] = "electronicAuction"
            tender["minimalStep"] = value_of(money(process.value * 0.01), currency, True)
        if process.enquiry_end is not None:
            tender["enquiryPeriod"] = period(process.created, process.enquiry_end)
        elif process.method_type != "priceQuotation":
            tender["enquiryPeriod"] = period(process.tender_start,
                                             process.tender_end - timedelta(days=3))
        tender["tenderPeriod"] = period(process.tender_start, process.tender_end)
    if process.cause:
        tender["cause"], tender["causeDescription"] = process.cause
    if process.lots:
        lot_status = {"complete": "complete", "unsuccessful": "unsuccessful",
                      "cancelled": "cancelled"}.get(process.status, "active")
        tender["lots"] = [{"id": lot.id, "title": lot.title, "description": lot.description,
                           "status": lot_status, "value": value_of(lot.value, currency, True)}
                          for lot in process.lots]
    if process.bids:
        tender["bids"] = [render_native_bid(bid, process) for bid in process.bids]
    if process.awards:
        tender["awards"] = [render_native_award(award, currency) for award in process.awards]
    if process.contracts:
        tender["contracts"] = [render_native_contract(contract, currency)
                               for contract in process.contracts]
    if process.cancellation:
        cancellation = process.cancellation
        tender["cancellations"] = [{"id": cancellation.id, "status": "active",
                                    "date": kyiv_iso(cancellation.date),
                                    "reasonType": cancellation.reason_type,
                                    "reason": cancellation.reason, "cancellationOf": "tender"}]
    if process.complaint:
        tender["complaints"] = [render_native_complaint(process)]
    if process.restricted:
        mask_restricted_tender(tender)
    return {"data": tender, "config": config}


def render_native_bid(bid, process):
    rendered = {"id": bid.id, "date": kyiv_iso(bid.date), "status": "active",
                "tenderers": [bid.supplier.native]}
    if process.lots:
        rendered["lotValues"] = [
            {"relatedLot": lot_id, "status": "active", "date": kyiv_iso(bid.date),
             "value": value_of(amount, process.currency, True)}
            for lot_id, amount in bid.lot_values]
    else:
        rendered["value"] = value_of(bid.lot_values[0][1], process.currency, True)
    return rendered


def render_native_award(award, currency):
    rendered = {"id": award.id, "status": award.status, "date": kyiv_iso(award.date),
                "value": value_of(award.amount, currency, True),
                "suppliers": [award.supplier.native],
                "qualified": award.status != "unsuccessful",
                "eligible": award.status != "unsuccessful"}
    if award.bid_id:
        rendered["bid_id"] = award.bid_id
    if award.lot_id:
        rendered["lotID"] = award.lot_id
    return rendered


def render_native_contract(contract, currency):
    # The tender API shows contracts slim and as signed: changes and "terminated" live in the
    # contracting API.
    rendered = {"id": contract.id, "awardID": contract.award.id,
                "contractID": contract.contract_id,
                "status": "pending" if contract.status == "pending" else "active",
                "value": value_of(contract.signed_amount, currency, True)}
    if contract.date_signed is not None:
        rendered["dateSigned"] = kyiv_iso(contract.date_signed)
    return rendered


def render_native_complaint(process):
    complaint = process.complaint
    submitted = kyiv_iso(complaint.submitted)
    rendered = {"id": complaint.id, "complaintID": f"{process.tender_id}.a1",
                "date": submitted, "dateSubmitted": submitted, "status": complaint.status,
                "type": "complaint" if process.method_type.startswith("above") else "claim",
                "title": complaint.title, "description": complaint.description,
                "author": complaint.author.native}
    if complaint.decided is not None:
        rendered["dateDecision"] = kyiv_iso(complaint.decided)
    return rendered


def masked_organization(organization):
    return {
        "name": MASKED,
        "identifier": {"scheme": organization["identifier"]["scheme"], "id": MASKED,
                       "legalName": MASKED},
        "address": dict.fromkeys(organization["address"], MASKED),
        "contactPoint": dict.fromkeys(organization["contactPoint"], MASKED),
        **({"scale": organization["scale"]} if "scale" in organization else {}),
    }


def masked_item(item):
    return {**item, "description": MASKED, "quantity": 0.0,
            "deliveryDate": dict.fromkeys(item["deliveryDate"], MASKED_DATE),
            "deliveryAddress": dict.fromkeys(item["deliveryAddress"], MASKED)}


def mask_documents(documents):
    return [{**doc, "title": MASKED, "url": MASKED} for doc in documents]


def mask_restricted_tender(tender):
    """Mask a restricted tender the way the API shows it to the public: documents, items,
    tenderers and suppliers read "Приховано", quantities 0.0, delivery dates 1970-01-01."""
    tender["documents"] = mask_documents(tender["documents"])
    tender["items"] = [masked_item(item) for item in tender["items"]]
    for bid in tender.get("bids", ()):
        bid["tenderers"] = [masked_organization(org) for org in bid["tenderers"]]
    for award in tender.get("awards", ()):
        award["suppliers"] = [masked_organization(org) for org in award["suppliers"]]


RENDERERS = {"ocds": render_ocds_release, "prozorro": render_native_envelope}


# --- output ------------------------------------------------------------------------------------

@contextlib.contextmanager
def open_output(path):
    """Binary output; ``.gz`` gets gzip level 1 with no name or time in the header, so the bytes
    depend only on the content."""
    with open(path, "wb") as raw:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw,
                               mtime=0) as compressed:
                yield compressed
        else:
            yield raw


class ChunkWriter(threading.Thread):
    """Writes chunks of lines on its own thread. zlib and file writes release the GIL, so
    compression runs on a second core while the main thread generates; the bounded queue keeps
    memory flat."""

    def __init__(self, path):
        super().__init__(name="chunk-writer", daemon=True)
        self.path = path
        self.chunks = queue.Queue(maxsize=QUEUED_CHUNKS)
        self.error = None

    def run(self):
        drained = False
        try:
            with open_output(self.path) as out:
                while (chunk := self.chunks.get()) is not None:
                    out.write(chunk)
                drained = True
        except BaseException as error:  # handed to the main thread by put() and close()
            self.error = error
            while not drained and self.chunks.get() is not None:
                pass  # keep consuming so the producer never blocks on a full queue

    def put(self, chunk):
        if self.error is not None:
            raise self.error
        self.chunks.put(chunk)

    def close(self):
        self.chunks.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def write_records(kind, count, seed, path):
    """Generate ``count`` records of ``kind`` into ``path``; return the uncompressed byte count."""
    # Records and pools hold no reference cycles, so reference counting frees everything; the
    # cyclic collector would only rescan the pools over and over (about 40% of the run time).
    gc.disable()
    rng = random.Random(seed)
    pools = Pools(rng)
    render = RENDERERS[kind]
    native = kind == "prozorro"
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    writer = ChunkWriter(path)
    writer.start()
    written = 0
    batch = []
    try:
        for sequence in range(1, count + 1):
            batch.append(dumps(render(rng, plan_process(rng, pools, sequence, native)),
                               option=newline))
            if len(batch) == WRITE_BATCH or sequence == count:
                chunk = b"".join(batch)
                writer.put(chunk)
                written += len(chunk)
                batch.clear()
    finally:
        writer.close()
        gc.enable()
    return written


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(
        description="Generate deterministic ProZorro-like test data (JSON Lines) for benchmarks.")
    parser.add_argument("--kind", choices=sorted(RENDERERS), required=True,
                        help="ocds: OCDS compiled releases; prozorro: native API tender envelopes")
    parser.add_argument("--count", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output path; a name ending in .gz is gzip-compressed")
    arguments = parser.parse_args(argv)
    if arguments.count < 1:
        parser.error("--count must be at least 1")
    return arguments


def main(argv=None):
    arguments = parse_arguments(argv)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    written = write_records(arguments.kind, arguments.count, arguments.seed, arguments.out)
    seconds = time.perf_counter() - started
    on_disk = arguments.out.stat().st_size
    print(f"generated {arguments.count} {arguments.kind} records (seed {arguments.seed}) into "
          f"{arguments.out}: {written} bytes, {written / arguments.count:.0f} B/record average, "
          f"{on_disk} bytes on disk, {seconds:.1f} s, {arguments.count / seconds:.0f} records/s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
