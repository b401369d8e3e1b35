"""The classifier: category files applied to processes and items in vectorised Polars expressions.

Evidence per (ocid, category): codes (item CPV prefixes), medicines (INN/ATC), keywords (title,
description, item description) and buyer kind. Strong evidence (a defining code, a medicine, or a
keyword given score 2) scores 2, each distinct weak signal (a context code, a keyword or context
keyword, the buyer kind) 1; a category is assigned when the score reaches its ``min_score``
(default 2: one strong or two weak signals). Confidence is high when a code or medicine is among
the evidence, medium when only text and buyer signals are.
A category implies its parent. Texts are normalised first (apostrophes unified, a Latin I inside a
Cyrillic word read as Cyrillic І, whitespace collapsed), and each distinct text is matched once.
"""

from __future__ import annotations

import polars as pl

from monitor.classify.categories import Category

STRONG = 2
EVIDENCE_SCHEMA = {"ocid": pl.String, "category": pl.String, "signal": pl.String, "field": pl.String,
                   "value": pl.String, "weight": pl.Int32}
RESULT_SCHEMA = {"ocid": pl.String, "category": pl.String, "score": pl.Int32, "confidence": pl.String,
                 "evidence": pl.List(pl.Struct({"signal": pl.String, "field": pl.String, "value": pl.String}))}

_CYRILLIC = "А-ЯЁЇІЄҐа-яёїієґ"


def normalise_text(column: pl.Expr) -> pl.Expr:
    """Apostrophes unified, Latin I/i between Cyrillic letters made Cyrillic, whitespace collapsed."""
    return (
        column.str.replace_all(r"[’ʼ`´]", "'")
        .str.replace_all(f"([{_CYRILLIC}])I", "${1}І")
        .str.replace_all(f"I([{_CYRILLIC}])", "І${1}")
        .str.replace_all(f"([{_CYRILLIC}])i", "${1}і")
        .str.replace_all(f"i([{_CYRILLIC}])", "і${1}")
        .str.replace_all(r"\s+", " ")
    )


def _alternation(patterns: tuple[str, ...]) -> str:
    return "|".join(patterns)


def _prefix_regex(prefixes: tuple[str, ...]) -> str:
    return "^(?:" + "|".join(prefixes) + ")"


def _code_evidence(items: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    """Evidence from item CPV codes, computed once per distinct code and joined back."""
    codes = items.select(pl.col("cpv").drop_nulls().unique())
    if codes.is_empty():
        return []
    codes = codes.with_columns(digits=pl.col("cpv").str.replace(r"-\d$", ""))
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
                items.join(hits.select("cpv"), on="cpv").select(
                    "ocid", category=pl.lit(category.id), signal=pl.lit(signal), field=pl.lit("item"),
                    value=pl.col("cpv"), weight=pl.lit(weight, pl.Int32))
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
                value=pl.col("inn").str.to_lowercase(), weight=pl.lit(STRONG, pl.Int32)))
        if category.atc:
            matches = pl.col("atc").str.contains(_prefix_regex(category.atc))
            if category.atc_exclude:
                matches &= ~pl.col("atc").str.contains(_prefix_regex(category.atc_exclude))
            frames.append(medicines.filter(matches).select(
                "ocid", category=pl.lit(category.id), signal=pl.lit("medicine"), field=pl.lit("atc"),
                value=pl.col("atc"), weight=pl.lit(STRONG, pl.Int32)))
    return frames


def _text_matches(texts: pl.DataFrame, distinct: pl.DataFrame, category: Category, signal: str,
                  patterns: list[tuple[str, int]]) -> pl.DataFrame | None:
    """Evidence rows for ``patterns`` (regex, score) found in the distinct texts (negatives applied)."""
    if not patterns:
        return None
    found = pl.col("norm").str.contains(_alternation(tuple(p for p, _ in patterns)))
    if category.negative:
        found &= ~pl.col("norm").str.contains(_alternation(category.negative))
    candidates = distinct.filter(found)
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
        value=pl.col("value"), weight=pl.col("weight"))


def _keyword_evidence(texts: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    """Keywords matched in each distinct normalised text (one alternation per category, then per keyword)."""
    distinct = texts.select(pl.col("norm").unique())
    frames = []
    for category in categories:
        frames.append(_text_matches(texts, distinct, category, "keyword", list(category.keywords)))
        frames.append(_text_matches(texts, distinct, category, "context_keyword",
                                    [(p, 1) for p in category.context_keywords]))
    return [f for f in frames if f is not None]


def _buyer_evidence(processes: pl.DataFrame, categories: list[Category]) -> list[pl.DataFrame]:
    return [
        processes.filter(pl.col("buyer_kind").is_in(list(category.buyer_kinds))).select(
            "ocid", category=pl.lit(category.id), signal=pl.lit("buyer_kind"), field=pl.lit("buyer"),
            value=pl.col("buyer_kind"), weight=pl.lit(1, pl.Int32))
        for category in categories if category.buyer_kinds
    ]


def evidence(processes: pl.DataFrame, items: pl.DataFrame, categories: list[Category]) -> pl.DataFrame:
    """Every piece of evidence: (ocid, category, signal, field, value, weight)."""
    texts = pl.concat([
        processes.select("ocid", field=pl.lit("title"), text=pl.col("title")),
        processes.select("ocid", field=pl.lit("description"), text=pl.col("description")),
        items.select("ocid", field=pl.lit("item"), text=pl.col("description")),
    ]).filter(pl.col("text").str.len_chars() > 0).with_columns(norm=normalise_text(pl.col("text")))
    frames = (_code_evidence(items, categories) + _medicine_evidence(items, categories)
              + _keyword_evidence(texts, categories) + _buyer_evidence(processes, categories))
    if not frames:
        return pl.DataFrame(schema=EVIDENCE_SCHEMA)
    return pl.concat([f.cast(EVIDENCE_SCHEMA) for f in frames]).unique(
        subset=["ocid", "category", "signal", "value"], keep="first", maintain_order=True)


def classify(processes: pl.DataFrame, items: pl.DataFrame, categories: list[Category]) -> pl.DataFrame:
    """Categories per process: (ocid, category, score, confidence, evidence).

    ``processes``: ocid, title, description, buyer_kind. ``items``: ocid, cpv, description, inn, atc.
    """
    found = evidence(processes, items, categories)
    min_score = pl.DataFrame({"category": [c.id for c in categories], "min_score": [c.min_score for c in categories],
                              "require_keyword": [c.require_keyword for c in categories]})
    scored = (
        found.group_by("ocid", "category")
        .agg(
            strong=(pl.col("weight") == STRONG).any(),
            structured=pl.col("signal").is_in(["code", "medicine"]).any(),
            weak=(pl.col("weight") < STRONG).sum(),
            keyword=(pl.col("signal") == "keyword").any(),
            evidence=pl.struct("signal", "field", "value"),
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
                 evidence=pl.struct(signal=pl.lit("category"), field=pl.lit("category"), value=pl.col("category")))
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
