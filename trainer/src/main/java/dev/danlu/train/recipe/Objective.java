package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraAdapter;
import dev.danlu.train.model.Batch;
import dev.danlu.train.model.Llama;
import dev.danlu.train.model.LlamaState;
import dev.danlu.train.model.LlamaWeights;
import java.util.function.IntConsumer;

/**
 * The loss a recipe trains: forward on a micro-batch to a loss, and backward from it into the
 * adapter's gradients. Causal-LM cross-entropy over labels != -100 serves pretraining and SFT (SFT
 * masks its prompt with -100); a pairwise reward or DPO loss reads {@code s.logits} after {@link
 * Llama#forwardLogits}, writes dLoss/dLogits there and calls {@link Llama#backwardFromLogitGrads}.
 */
public interface Objective {
  /**
   * Forward pass; returns the micro-batch's mean loss and leaves in {@code s.tokenCount()} how many
   * tokens it averaged over (the evaluator weights by it).
   */
  double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b);

  /**
   * Back-propagates {@code scale} × the last forward's loss (the fp16 loss scale, else 1); {@code
   * gradsFinal} as in {@link Llama#backward(LlamaWeights, LoraAdapter, LlamaState, double,
   * IntConsumer)}, may be null.
   */
  void backward(LlamaWeights w, LoraAdapter ad, LlamaState s, double scale, IntConsumer gradsFinal);

  /**
   * Whether the micro-batch has anything to learn from. One without (an SFT batch whose labels are
   * all -100) is skipped: the reference would divide by zero label tokens and get NaN.
   */
  default boolean hasTargets(Batch b) {
    return true;
  }

  /** Hugging Face's causal-LM loss: cross-entropy of logits[:, :-1] against labels[:, 1:]. */
  Objective CAUSAL_LM =
      new Objective() {
        @Override
        public double forward(LlamaWeights w, LoraAdapter ad, LlamaState s, Batch b) {
          return Llama.forward(w, ad, s, b);
        }

        @Override
        public void backward(
            LlamaWeights w, LoraAdapter ad, LlamaState s, double scale, IntConsumer gradsFinal) {
          Llama.backward(w, ad, s, scale, gradsFinal);
        }

        @Override
        public boolean hasTargets(Batch b) {
          return b.labelTokens() > 0;
        }
      };
}
