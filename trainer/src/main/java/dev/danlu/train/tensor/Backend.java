package dev.danlu.train.tensor;

import java.nio.file.Path;
import java.util.Locale;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Chooses and checks the ND4J backend. The backend is fixed by the classpath (ND4J picks the one
 * jar it finds): {@code nd4j-native} (CPU, OpenBLAS) by default, {@code nd4j-cuda-11.6} with {@code
 * mvn -Pcuda}. The run-time setting {@code -Ddanlu.backend=cpu|cuda} (or env {@code DANLU_BACKEND})
 * states what the operator expects, and a mismatch fails at start-up instead of silently training
 * on the wrong device.
 *
 * <p>Precision: all math is float32 (ND4J's HALF/BF16 gemm on CPU is hundreds of times slower,
 * REFERENCE.md). The frozen base weights may be stored in fp16/bf16 ({@link TorchDtype}, default
 * float32 on CPU and the checkpoint's dtype on CUDA) and are widened a layer at a time;
 * activations, LoRA weights, gradients and optimizer state stay float32 (docs/precision.md). The
 * fused kernels in {@link Kernels} read host memory through {@link Buf}, so the CUDA backend
 * currently runs them on host-synchronised buffers — correct, but not a GPU-speed path.
 */
public final class Backend {
  /** The two backends danlu knows. */
  public enum Kind {
    CPU,
    CUDA
  }

  private Backend() {}

  /**
   * Points javacpp's native cache at danlu's cache (unless the JVM already sets {@code
   * org.bytedeco.javacpp.cachedir}, as bin/danlu and the tests do), initialises ND4J, checks that
   * the backend on the classpath is the requested one, and returns it. Call before any other ND4J
   * use: javacpp reads the cache directory once.
   */
  public static synchronized Kind select() {
    if (System.getProperty("org.bytedeco.javacpp.cachedir") == null) {
      String cache = System.getenv("DANLU_CACHE_DIR");
      Path dir =
          cache != null
              ? Path.of(cache)
              : Path.of(System.getProperty("user.home"), ".cache", "danlu");
      System.setProperty("org.bytedeco.javacpp.cachedir", dir.resolve("javacpp").toString());
    }
    return check(requested(), loaded());
  }

  /** What the configuration asks for: danlu.backend, then DANLU_BACKEND, else cpu. */
  public static String requested() {
    String v = System.getProperty("danlu.backend");
    if (v == null) {
      v = System.getenv("DANLU_BACKEND");
    }
    return v == null ? "cpu" : v;
  }

  /** The backend ND4J actually loaded. */
  public static Kind loaded() {
    String name = Nd4j.getBackend().getClass().getSimpleName().toLowerCase(Locale.ROOT);
    return name.contains("cuda") || name.contains("jcublas") ? Kind.CUDA : Kind.CPU;
  }

  /** Validates {@code requested} against {@code loaded}, with an error saying how to fix it. */
  public static Kind check(String requested, Kind loaded) {
    Kind want;
    switch (requested.trim().toLowerCase(Locale.ROOT)) {
      case "cpu" -> want = Kind.CPU;
      case "cuda", "gpu" -> want = Kind.CUDA;
      default ->
          throw new IllegalArgumentException(
              "danlu.backend='" + requested + "' is not a backend (use cpu or cuda)");
    }
    if (want != loaded) {
      throw new IllegalStateException(
          want == Kind.CUDA
              ? "danlu.backend=cuda but ND4J loaded its CPU backend (nd4j-native): this build"
                  + " has no CUDA backend. Rebuild with 'mvn -Pcuda package' (nd4j-cuda-11.6,"
                  + " needs CUDA 11.6 drivers on the host) or run with -Ddanlu.backend=cpu."
              : "danlu.backend=cpu but ND4J loaded its CUDA backend: this is a -Pcuda build;"
                  + " run with -Ddanlu.backend=cuda or rebuild without -Pcuda.");
    }
    return loaded;
  }
}
