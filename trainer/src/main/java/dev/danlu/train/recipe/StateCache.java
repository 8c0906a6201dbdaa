package dev.danlu.train.recipe;

import dev.danlu.train.lora.LoraConfig;
import dev.danlu.train.model.AttentionImpl;
import dev.danlu.train.model.LlamaConfig;
import dev.danlu.train.model.LlamaState;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Activation states by batch shape, at most {@link #CAPACITY} of them (the least recently used is
 * dropped). Pretraining has one shape; SFT pads each micro-batch to its longest row (rounded up,
 * see SftBatches), so shapes vary, and a state per shape would hold a 7B model's activations (~5 GB
 * at 512 tokens) many times over.
 */
final class StateCache {
  static final int CAPACITY = 2;

  private final LlamaConfig config;
  private final LoraConfig lora;
  private final boolean checkpointing;
  private final AttentionImpl attention;
  private final Map<Long, LlamaState> states =
      new LinkedHashMap<>(4, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, LlamaState> eldest) {
          return size() > CAPACITY;
        }
      };

  /**
   * @param config the model's config with the effective vocabulary
   * @param lora the adapter's config (null: base model only)
   */
  StateCache(LlamaConfig config, LoraConfig lora, boolean checkpointing) {
    this(config, lora, checkpointing, AttentionImpl.AUTO);
  }

  /** As above, states running the {@code attention} kernel (attn_implementation). */
  StateCache(LlamaConfig config, LoraConfig lora, boolean checkpointing, AttentionImpl attention) {
    this.config = config;
    this.lora = lora;
    this.checkpointing = checkpointing;
    this.attention = attention;
  }

  /** The state for [batch, seq], reused while the shape recurs. */
  LlamaState get(int batch, int seq) {
    return states.computeIfAbsent(
        ((long) batch << 32) | seq,
        k -> new LlamaState(config, batch, seq, lora, checkpointing, DataType.FLOAT, attention));
  }

  /** How many states are held (tests). */
  int size() {
    return states.size();
  }
}
