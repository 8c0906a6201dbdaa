package dev.danlu.train.zero;

/**
 * A trainable parameter as the model exposes it: its Hugging Face name and flat fp32 arrays for the
 * values and the accumulated gradient (same length). Shape does not matter to the optimizer.
 */
public record NamedParam(String name, float[] data, float[] grad) {
  public NamedParam {
    if (data.length != grad.length) {
      throw new IllegalArgumentException(
          name + ": data has " + data.length + " elements but grad has " + grad.length);
    }
  }
}
