package dev.danlu.launch.eval;

import picocli.CommandLine.Command;

/** {@code danlu eval}: the parent of {@code eval ppl} and {@code eval mc}. */
@Command(
    name = "eval",
    description = {
      "Evaluate a model on Spark: perplexity (eval ppl) or C-Eval/CMMLU multiple choice (eval mc).",
      "See docs/evaluation.md.",
      ""
    })
public final class EvalCommand {}
