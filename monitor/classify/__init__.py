"""Classification of health and social-protection purchases from the category files in rules/classify/."""
