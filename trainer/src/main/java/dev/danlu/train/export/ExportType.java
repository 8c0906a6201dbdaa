package dev.danlu.train.export;

import java.util.Locale;

/**
 * The {@code --type} of {@code danlu export-gguf}: llama.cpp's file types ({@code llama_ftype} in
 * {@code include/llama.h}) with the tensor type each starts from before the mixture rules of {@link
 * QuantMix}.
 */
public enum ExportType {
  F32(0, GgmlType.F32),
  F16(1, GgmlType.F16),
  Q8_0(7, GgmlType.Q8_0),
  Q4_0(2, GgmlType.Q4_0),
  Q4_K_M(15, GgmlType.Q4_K),
  Q5_K_M(17, GgmlType.Q5_K),
  Q6_K(18, GgmlType.Q6_K);

  private final int ftype;
  private final GgmlType base;

  ExportType(int ftype, GgmlType base) {
    this.ftype = ftype;
    this.base = base;
  }

  /** general.file_type. */
  public int ftype() {
    return ftype;
  }

  /** The type of most 2-D weights. */
  public GgmlType base() {
    return base;
  }

  /** True for the types that go through llama-quantize's rules. */
  public boolean quantized() {
    return base.isQuantized();
  }

  /** The command-line spelling: f32, f16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses a command-line spelling, case-insensitively. */
  public static ExportType parse(String s) {
    for (ExportType t : values()) {
      if (t.cliName().equalsIgnoreCase(s)) {
        return t;
      }
    }
    throw new IllegalArgumentException(
        "unknown type '" + s + "' (known: f32, f16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k)");
  }
}
