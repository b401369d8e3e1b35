"""The classifier: category files applied to processes and items in vectorised Polars expressions.

Evidence per (ocid, category): codes (item CPV prefixes), medicines (INN/ATC), keywords (title,
description, item description), buyer kind and budget programme codes (plans only). Strong evidence
(a defining code, a medicine, or a keyword given score 2) scores 2, each distinct weak signal (a
context code, a keyword or context keyword, the buyer kind, a budget code) 1; a category is assigned
when the score reaches its ``min_score`` (default 2: one strong or two weak signals). Confidence is
high when a code or medicine is among the evidence, medium when only text, buyer and budget signals are.
A negative pattern found in any text of a process, or an item ATC listed under ``negative_atc``, voids
the category's keyword evidence for the whole process (its codes and medicines still count).
A category implies its parent. Texts are normalised first (apostrophes unified, Latin look-alike
letters inside Cyrillic words read as Cyrillic, whitespace collapsed), and each distinct text is
normalised and matched once. Code and budget evidence carry the code's readable name (ДК021,
ТПКВКМБ or КПКВК), looked up once per distinct code.
"""

from __future__ import annotations

import polars as pl

from monitor.classify.categories import BUDGET_SCHEMES, Category, budget_code_names, cpv_names_by_digits

STRONG = 2
EVIDENCE_SCHEMA = {"ocid": pl.String, "category": pl.String, "signal": pl.String, "field": pl.String,
                   "value": pl.String, "name": pl.String, "weight": pl.Int32}
EVIDENCE_STRUCT = pl.Struct({"signal": pl.String, "field": pl.String, "value": pl.String, "name": pl.String})
RESULT_SCHEMA = {"ocid": pl.String, "category": pl.String, "score": pl.Int32, "confidence": pl.String,
                 "evidence": pl.List(EVIDENCE_STRUCT)}
BUDGET_SCHEMA = {"ocid": pl.String, "scheme": pl.String, "code": pl.String}

_CYRILLIC = "А-ЯЁЇІЄҐа-яёїієґ"
# Latin letters that look like Cyrillic ones: read as Cyrillic when they touch a Cyrillic letter ("BIЛ")
LOOKALIKES = {"A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "I": "І", "K": "К", "M": "М", "O": "О", "P": "Р",
              "T": "Т", "X": "Х", "a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "x": "х", "y": "у"}
_LATIN = "".join(LOOKALIKES)
_MIXED = f"[{_CYRILLIC}][{_LATIN}]|[{_LATIN}][{_CYRILLIC}]"


def normalise_text(column: pl.Expr) -> pl.Expr:
    """Apostrophes unified and whitespace collapsed (the cheap part, for every text)."""
    return column.str.replace_all(r"[’ʼ`´]", "'").str.replace_all(r"\s+", " ")


def _cyrillic_lookalikes(column: pl.Expr) -> pl.Expr:
    """One pass: each Latin look-alike next to a Cyrillic letter made Cyrillic."""
    for latin, cyrillic in LOOKALIKES.items():
        column = (column.str.replace_all(f"([{_CYRILLIC}]){latin}", f"${{1}}{cyrillic}")
                  .str.replace_all(f"{latin}([{_CYRILLIC}])", f"{cyrillic}${{1}}"))
    return column


def normalise_texts(texts: pl.DataFrame) -> pl.DataFrame:
    """``texts`` (column ``text``) with ``norm``, each distinct text normalised once; the look-alike
    passes run only on the few texts that mix Latin and Cyrillic letters, until nothing changes
    (a run of look-alikes such as "BI" in "BIЛ" needs one pass per letter)."""
    distinct = texts.select(pl.col("text").unique()).with_columns(norm=normalise_text(pl.col("text")))
    distinct = distinct.with_columns(mixed=pl.col("norm").str.contains(_MIXED))
    mixed = distinct.filter("mixed").drop("mixed")
    if not mixed.is_empty():
        for _ in range(8):
            fixed = mixed.with_columns(norm=_cyrillic_lookalikes(pl.col("norm")))
            if fixed["norm"].equals(mixed["norm"]):
                break
            mixed = fixed
        distinct = pl.concat([distinct.filter(~pl.col("mixed")).drop("mixed"), mixed])
    else:
        distinct = distinct.drop("mixed")
    return texts.join(distinct, on="text")


def _alternation(patterns: tuple[str, ...]) -> str:
    return "|".join(patterns)


def _prefix_regex(prefixes: tuple[str, ...]) -> str:
    return "^(?:" + "|".join(prefixes) + ")"


def _code_evidence(items: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    """Evidence from item CPV codes, computed once per distinct code (with its ДК021 name) and joined back."""
    codes = items.select(pl.col("cpv").drop_nulls().unique())
    if codes.is_empty():
        return []
    codes = codes.with_columns(digits=pl.col("cpv").str.replace(r"-\d$", ""))
    # ДК021 names in one vectorised lookup, not a Python call per code
    codes = codes.with_columns(name=pl.col("digits").str.pad_end(8, "0").replace_strict(
        cpv_names_by_digits(), default=None, return_dtype=pl.String))
    frames = []
    for category in categories:
        excluded = (pl.col("digits").str.contains(_prefix_regex(category.exclude_codes))
                    if category.exclude_codes else pl.lit(False))
        for signal, prefixes, weight in (("code", category.codes, STRONG), ("context_code", category.context_codes, 1)):
            if not prefixes:
                continue
            hits = codes.filter(pl.col("digits").str.contains(_prefix_regex(prefixes)) & ~excluded)
            if hits.is_empty():
                continue
            frames.append(
                items.join(hits.select("cpv", "name"), on="cpv").select(
                    "ocid", category=pl.lit(category.id), signal=pl.lit(signal), field=pl.lit("item"),
                    value=pl.col("cpv"), name=pl.col("name"), weight=pl.lit(weight, pl.Int32))
            )
    return frames


def _medicine_evidence(items: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    frames = []
    medicines = items.filter(pl.col("inn").is_not_null() | pl.col("atc").is_not_null())
    if medicines.is_empty():
        return frames
    for category in categories:
        if category.inn:
            inn = "(?i)\\b(?:" + "|".join(category.inn) + ")"
            frames.append(medicines.filter(pl.col("inn").str.contains(inn)).select(
                "ocid", category=pl.lit(category.id), signal=pl.lit("medicine"), field=pl.lit("inn"),
                value=pl.col("inn").str.to_lowercase(), name=pl.lit(None, pl.String), weight=pl.lit(STRONG, pl.Int32)))
        if category.atc:
            matches = pl.col("atc").str.contains(_prefix_regex(category.atc))
            if category.atc_exclude:
                matches &= ~pl.col("atc").str.contains(_prefix_regex(category.atc_exclude))
            frames.append(medicines.filter(matches).select(
                "ocid", category=pl.lit(category.id), signal=pl.lit("medicine"), field=pl.lit("atc"),
                value=pl.col("atc"), name=pl.lit(None, pl.String), weight=pl.lit(STRONG, pl.Int32)))
    return frames


def _text_matches(texts: pl.DataFrame, distinct: pl.DataFrame, category: Category, signal: str,
                  patterns: list[tuple[str, int]]) -> pl.DataFrame | None:
    """Evidence rows for ``patterns`` (regex, score) found in the distinct texts (negatives are applied
    per process afterwards, in ``_keyword_evidence``)."""
    if not patterns:
        return None
    candidates = distinct.filter(pl.col("norm").str.contains(_alternation(tuple(p for p, _ in patterns))))
    if candidates.is_empty():
        return None
    # the few candidate texts are checked pattern by pattern, to count distinct keywords
    per_pattern = candidates.with_columns(
        pl.concat_list([
            pl.when(pl.col("norm").str.contains(pattern)).then(
                pl.struct(value=pl.col("norm").str.extract(f"({pattern})", 1).str.to_lowercase(),
                          weight=pl.lit(score, pl.Int32)))
            for pattern, score in patterns
        ]).list.drop_nulls().alias("matched")
    ).explode("matched").drop_nulls("matched").unnest("matched")
    return texts.join(per_pattern, on="norm").select(
        "ocid", category=pl.lit(category.id), signal=pl.lit(signal), field=pl.col("field"),
        value=pl.col("value"), name=pl.lit(None, pl.String), weight=pl.col("weight"))


def _voided(texts: pl.DataFrame, distinct: pl.DataFrame, items: pl.DataFrame,
            categories: list[Category]) -> pl.DataFrame:
    """(ocid, category) pairs whose keyword evidence is void: a text of the process matches one of the
    category's negatives, or an item carries one of its ``negative_atc`` codes."""
    frames = []
    for category in categories:
        if category.negative:
            negative = distinct.filter(pl.col("norm").str.contains(_alternation(category.negative)))
            if not negative.is_empty():
                frames.append(texts.join(negative, on="norm", how="semi").select(
                    "ocid", category=pl.lit(category.id)))
        if category.negative_atc:
            frames.append(items.filter(pl.col("atc").str.contains(_prefix_regex(category.negative_atc))).select(
                "ocid", category=pl.lit(category.id)))
    if not frames:
        return pl.DataFrame(schema={"ocid": pl.String, "category": pl.String})
    return pl.concat(frames).unique()


def _keyword_evidence(texts: pl.DataFrame, items: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    """Keywords matched in each distinct normalised text (one alternation per category, then per keyword),
    minus the processes where a negative voids them."""
    distinct = texts.select(pl.col("norm").unique())
    frames = []
    for category in categories:
        frames.append(_text_matches(texts, distinct, category, "keyword", list(category.keywords)))
        frames.append(_text_matches(texts, distinct, category, "context_keyword",
                                    [(p, 1) for p in category.context_keywords]))
    frames = [f for f in frames if f is not None]
    if not frames:
        return []
    voided = _voided(texts, distinct, items, categories)
    found = pl.concat([f.cast(EVIDENCE_SCHEMA) for f in frames])
    return [found.join(voided, on=["ocid", "category"], how="anti") if voided.height else found]


def _buyer_evidence(processes: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    return [
        processes.filter(pl.col("buyer_kind").is_in(list(category.buyer_kinds))).select(
            "ocid", category=pl.lit(category.id), signal=pl.lit("buyer_kind"), field=pl.lit("buyer"),
            value=pl.col("buyer_kind"), name=pl.lit(None, pl.String), weight=pl.lit(1, pl.Int32))
        for category in categories if category.buyer_kinds
    ]


def _budget_evidence(budget: pl.DataFrame | None, categories: list[Category]) -> list[pl.DataFrame]:
    """Budget programme codes (plans' budget breakdown: ТПКВКМБ, КПК-<year>): one weak point each."""
    wanted = [(category.id, scheme, code) for category in categories for scheme, code in category.budget_codes]
    if budget is None or budget.is_empty() or not wanted:
        return []
    found = budget.select(list(BUDGET_SCHEMA)).cast(BUDGET_SCHEMA).drop_nulls(["code"]).with_columns(
        key=pl.when(pl.col("scheme").str.strip_chars() == BUDGET_SCHEMES["tpkvkmb"]).then(pl.lit("tpkvkmb"))
        .when(pl.col("scheme").str.contains(r"^\s*КПК(-\d{4})?\s*$")).then(pl.lit("kpk")),
        code=pl.col("code").str.strip_chars())
    codes = found.select("key", "code").drop_nulls().unique()
    if codes.is_empty():
        return []
    known = budget_code_names()  # a Python lookup per distinct budget code of the plans: a handful
    codes = codes.with_columns(name=pl.Series([known[k].get(c) for k, c in codes.iter_rows()], dtype=pl.String))
    wanted_frame = pl.DataFrame(wanted, schema={"category": pl.String, "key": pl.String, "code": pl.String},
                                orient="row")
    return [found.join(codes, on=["key", "code"]).join(wanted_frame, on=["key", "code"]).select(
        "ocid", "category", signal=pl.lit("budget_code"), field=pl.lit("budget"),
        value=pl.col("scheme").str.strip_chars() + pl.lit(" ") + pl.col("code"), name=pl.col("name"),
        weight=pl.lit(1, pl.Int32))]


def evidence(processes: pl.DataFrame, items: pl.DataFrame, categories: list[Category],
             budget: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every piece of evidence: (ocid, category, signal, field, value, name, weight)."""
    texts = normalise_texts(pl.concat([
        processes.select("ocid", field=pl.lit("title"), text=pl.col("title")),
        processes.select("ocid", field=pl.lit("description"), text=pl.col("description")),
        items.select("ocid", field=pl.lit("item"), text=pl.col("description")),
    ]).filter(pl.col("text").str.len_chars() > 0))
    frames = (_code_evidence(items, categories) + _medicine_evidence(items, categories)
              + _keyword_evidence(texts, items, categories) + _buyer_evidence(processes, categories)
              + _budget_evidence(budget, categories))
    if not frames:
        return pl.DataFrame(schema=EVIDENCE_SCHEMA)
    return pl.concat([f.cast(EVIDENCE_SCHEMA) for f in frames]).unique(
        subset=["ocid", "category", "signal", "value"], keep="first", maintain_order=True)


def classify(processes: pl.DataFrame, items: pl.DataFrame, categories: list[Category],
             budget: pl.DataFrame | None = None) -> pl.DataFrame:
    """Categories per process: (ocid, category, score, confidence, evidence).

    ``processes``: ocid, title, description, buyer_kind. ``items``: ocid, cpv, description, inn, atc.
    ``budget`` (optional; plans only): ocid, scheme, code of each budget breakdown classification.
    Each evidence entry is (signal, field, value, name); ``name`` is the readable name of a code
    (ДК021 for code signals, ТПКВКМБ/КПКВК for budget codes), null for the other signals.
    """
    found = evidence(processes, items, categories, budget)
    min_score = pl.DataFrame({"category": [c.id for c in categories], "min_score": [c.min_score for c in categories],
                              "require_keyword": [c.require_keyword for c in categories]})
    scored = (
        found.group_by("ocid", "category")
        .agg(
            strong=(pl.col("weight") == STRONG).any(),
            structured=pl.col("signal").is_in(["code", "medicine"]).any(),
            weak=(pl.col("weight") < STRONG).sum(),
            keyword=(pl.col("signal") == "keyword").any(),
            evidence=pl.struct("signal", "field", "value", "name"),
        )
        .with_columns(score=(pl.col("strong").cast(pl.Int32) * STRONG + pl.col("weak")).cast(pl.Int32))
        .join(min_score, on="category")
        .filter((pl.col("score") >= pl.col("min_score")) & (pl.col("keyword") | ~pl.col("require_keyword")))
        .select("ocid", "category", "score",
                confidence=pl.when(pl.col("structured")).then(pl.lit("high")).otherwise(pl.lit("medium")),
                evidence="evidence")
    )
    return _with_parents(scored, categories).sort("ocid", "category")


def _with_parents(assigned: pl.DataFrame, categories: list[Category]) -> pl.DataFrame:
    """Add each assigned category's ancestors that were not assigned on their own evidence."""
    parents = pl.DataFrame({"category": [c.id for c in categories if c.parent],
                            "parent": [c.parent for c in categories if c.parent]}, schema={"category": pl.String,
                                                                                           "parent": pl.String})
    result = assigned.cast(RESULT_SCHEMA)
    frontier = result
    for _ in range(len(categories)):
        implied = (
            frontier.join(parents, on="category")
            .group_by("ocid", "parent")
            .agg(score=pl.col("score").max(), confidence=pl.col("confidence").min(),
                 evidence=pl.struct(signal=pl.lit("category"), field=pl.lit("category"), value=pl.col("category"),
                                    name=pl.lit(None, pl.String)))
            .rename({"parent": "category"})
            .join(result.select("ocid", "category"), on=["ocid", "category"], how="anti")
            .select(list(RESULT_SCHEMA))
            .cast(RESULT_SCHEMA)
        )
        if implied.is_empty():
            break
        result = pl.concat([result, implied])
        frontier = implied
    return result
