package dev.danlu.train.tensor;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The one door of the training step's matrix products. On the CPU backend a product of float32 or
 * float64 arrays whose rows are contiguous (fresh arrays, row-block views, transposed views) goes
 * straight to OpenBLAS's {@code cblas_?gemm} on the arrays' own memory, the same library and kernel
 * ND4J calls; everything else (other dtypes, the CUDA backend, exotic strides) goes through {@code
 * Nd4j.gemm}/{@code Nd4j.matmul}.
 *
 * <p>Why not always ND4J: each {@code Nd4j.gemm} builds and executes a custom op (shape checks, op
 * context, native round trip), which is nothing next to a 7B projection but dominates stories260K's
 * products of a few hundred kFLOP; and ND4J's batched matmul runs the attention heads at about half
 * the rate of the same per-head sgemm calls (measured by {@code ModelBenchGemms}).
 *
 * <p>Every call passing here also lets a benchmark record the exact calls of a step (operands,
 * flags, time) and replay each in isolation.
 */
public final class Gemm {
  /** One product as the step asked for it: the very operands, views, flags and scalars. */
  public record Call(
      boolean batched,
      INDArray a,
      INDArray b,
      INDArray c,
      boolean transA,
      boolean transB,
      double alpha,
      double beta) {
    /** Runs the product again (through the recorder, if one is installed). */
    public void run() {
      if (batched) {
        Gemm.batched(a, b, c, transA, transB);
      } else {
        mm(a, b, c, transA, transB, alpha, beta);
      }
    }
  }

  /** Sees every call after it ran, with its wall time; for diagnostics only. */
  public interface Recorder {
    void record(Call call, long nanos);
  }

  private static volatile Recorder recorder;

  /** Off (-Ddanlu.gemm.direct=false, or {@link #direct(boolean)}) routes everything to ND4J. */
  private static volatile boolean direct =
      Boolean.parseBoolean(System.getProperty("danlu.gemm.direct", "true"));

  private Gemm() {}

  /** Installs (or with null removes) the recorder. */
  public static void record(Recorder r) {
    recorder = r;
  }

  /** The installed recorder, or null. */
  public static Recorder recorder() {
    return recorder;
  }

  /** Turns the direct OpenBLAS path on or off (A/B benchmarks); returns the previous setting. */
  public static boolean direct(boolean on) {
    boolean was = direct;
    direct = on;
    return was;
  }

  /** c = alpha op(a) op(b) + beta c for 2-D arrays; c's rows must be contiguous. */
  public static void mm(
      INDArray a,
      INDArray b,
      INDArray c,
      boolean transA,
      boolean transB,
      double alpha,
      double beta) {
    Recorder r = recorder;
    long t0 = r == null ? 0 : System.nanoTime();
    if (!(direct && Blas.gemm(a, 0, b, 0, c, 0, transA, transB, alpha, beta))) {
      Nd4j.gemm(a, b, c, transA, transB, alpha, beta);
    }
    if (r != null) {
      r.record(new Call(false, a, b, c, transA, transB, alpha, beta), System.nanoTime() - t0);
    }
  }

  /** c[i] = op(a[i]) op(b[i]) over the leading dimension of 3-D arrays. */
  public static void batched(INDArray a, INDArray b, INDArray c, boolean transA, boolean transB) {
    Recorder r = recorder;
    long t0 = r == null ? 0 : System.nanoTime();
    if (!(direct && batchedDirect(a, b, c, transA, transB))) {
      Nd4j.matmul(a, b, c, transA, transB, false);
    }
    if (r != null) {
      r.record(new Call(true, a, b, c, transA, transB, 1.0, 0.0), System.nanoTime() - t0);
    }
  }

  /**
   * One product on sub-blocks of contiguous c-order arrays, addressed by element offset and leading
   * dimension: c[offC + i·ldc + j] = alpha Σ op(a)[i, l] op(b)[l, j] + beta c[...], with op(a) m×k
   * (stored k×m when {@code transA}) and op(b) k×n. The tiled attention calls this per tile: it
   * needs no INDArray view per call. Not recorded (tiles are many and tiny next to the step's
   * products); float32/float64 on the CPU backend go to OpenBLAS directly, anything else through
   * ND4J views.
   */
  public static void tile(
      INDArray a,
      long offA,
      int lda,
      boolean transA,
      INDArray b,
      long offB,
      int ldb,
      boolean transB,
      INDArray c,
      long offC,
      int ldc,
      int m,
      int n,
      int k,
      double alpha,
      double beta) {
    if (m == 0 || n == 0) {
      return;
    }
    if (direct && Blas.usable(a, b, c) && a.offset() == 0 && b.offset() == 0 && c.offset() == 0) {
      Blas.raw(a, offA, lda, transA, b, offB, ldb, transB, c, offC, ldc, m, n, k, alpha, beta);
      return;
    }
    INDArray va = view(a, offA, transA ? k : m, transA ? m : k, lda);
    INDArray vb = view(b, offB, transB ? n : k, transB ? k : n, ldb);
    INDArray vc = view(c, offC, m, n, ldc);
    Nd4j.gemm(va, vb, vc, transA, transB, alpha, beta);
  }

  private static INDArray view(INDArray x, long off, int rows, int cols, int ld) {
    return Nd4j.create(
        x.data(), new long[] {rows, cols}, new long[] {ld, 1}, x.offset() + off, 'c', x.dataType());
  }

  /**
   * Sets the number of threads OpenBLAS uses per call and returns the previous setting. Callers
   * that issue many small products from several Java threads at once (the tiled attention) turn it
   * down to 1 for their duration: OpenBLAS's own pool, shared by concurrent callers, otherwise
   * spins and serialises them (measured 10x slower than one thread per caller on 2 cores).
   */
  public static int blasThreads(int n) {
    org.nd4j.linalg.api.blas.Blas b = Nd4j.factory().blas();
    int was = b.getMaxThreads();
    if (was != n) {
      b.setMaxThreads(n);
    }
    return was;
  }

  /** Whether float32 products of these operands take the direct OpenBLAS path (tests). */
  static boolean directFor(INDArray a, INDArray b, INDArray c) {
    return direct && Blas.usable(a, b, c);
  }

  private static boolean batchedDirect(
      INDArray a, INDArray b, INDArray c, boolean transA, boolean transB) {
    if (a.rank() != 3 || b.rank() != 3 || c.rank() != 3) {
      return false;
    }
    long n = c.size(0);
    if (a.size(0) != n || b.size(0) != n || !Blas.usable(a, b, c)) {
      return false;
    }
    for (long i = 0; i < n; i++) {
      if (!Blas.gemm(
          a, i * a.stride(0), b, i * b.stride(0), c, i * c.stride(0), transA, transB, 1.0, 0.0)) {
        if (i == 0) {
          return false;
        }
        throw new IllegalStateException("batched gemm: slice " + i + " not addressable");
      }
    }
    return true;
  }

  /**
   * OpenBLAS's C interface through the same javacpp binding ND4J's CPU backend uses, looked up by
   * reflection so that a CUDA build (no OpenBLAS on its classpath) still compiles and runs.
   */
  private static final class Blas {
    private static final int ROW_MAJOR = 101;
    private static final int NO_TRANS = 111;
    private static final int TRANS = 112;
    private static final MethodHandle SGEMM;
    private static final MethodHandle DGEMM;

    static {
      MethodHandle s = null;
      MethodHandle d = null;
      try {
        if (Backend.loaded() == Backend.Kind.CPU) {
          Class<?> blas = Class.forName("org.bytedeco.openblas.global.openblas_nolapack");
          MethodHandles.Lookup lookup = MethodHandles.publicLookup();
          s = lookup.findStatic(blas, "cblas_sgemm", type(float.class, FloatPointer.class));
          d = lookup.findStatic(blas, "cblas_dgemm", type(double.class, DoublePointer.class));
        }
      } catch (ReflectiveOperationException | LinkageError e) {
        s = null; // no OpenBLAS binding on this classpath: ND4J does all products
        d = null;
      }
      SGEMM = s;
      DGEMM = d;
    }

    private static MethodType type(Class<?> scalar, Class<?> ptr) {
      return MethodType.methodType(
          void.class,
          new Class<?>[] {
            int.class, int.class, int.class, int.class, int.class, int.class, scalar, ptr,
            int.class, ptr, int.class, scalar, ptr, int.class
          });
    }

    static boolean usable(INDArray a, INDArray b, INDArray c) {
      DataType t = c.dataType();
      MethodHandle h = t == DataType.FLOAT ? SGEMM : t == DataType.DOUBLE ? DGEMM : null;
      return h != null && a.dataType() == t && b.dataType() == t;
    }

    /**
     * One row-major gemm on the last two dimensions of a, b, c starting at the given element
     * offsets from each array's first element; false (nothing done) when the layout does not fit.
     */
    static boolean gemm(
        INDArray a,
        long offA,
        INDArray b,
        long offB,
        INDArray c,
        long offC,
        boolean transA,
        boolean transB,
        double alpha,
        double beta) {
      if (!usable(a, b, c)) {
        return false;
      }
      int ra = a.rank();
      int rb = b.rank();
      int rc = c.rank();
      long m = c.size(rc - 2);
      long n = c.size(rc - 1);
      long k = transA ? a.size(ra - 2) : a.size(ra - 1);
      if ((transA ? a.size(ra - 1) : a.size(ra - 2)) != m
          || (transB ? b.size(rb - 1) : b.size(rb - 2)) != k
          || (transB ? b.size(rb - 2) : b.size(rb - 1)) != n) {
        throw new IllegalArgumentException(
            "gemm shapes do not match: "
                + java.util.Arrays.toString(a.shape())
                + (transA ? "^T" : "")
                + " x "
                + java.util.Arrays.toString(b.shape())
                + (transB ? "^T" : "")
                + " -> "
                + java.util.Arrays.toString(c.shape()));
      }
      if (m == 0 || n == 0) {
        return true;
      }
      if (c.stride(rc - 1) != 1 && n > 1) {
        return false; // C must be row-major with contiguous rows
      }
      long ldc = Math.max(c.stride(rc - 2), n);
      long[] opA = layout(a, transA);
      long[] opB = layout(b, transB);
      if (opA == null || opB == null || k == 0 || ldc > Integer.MAX_VALUE) {
        return false;
      }
      int ta = opA[0] == 1 ? TRANS : NO_TRANS;
      int tb = opB[0] == 1 ? TRANS : NO_TRANS;
      try {
        if (c.dataType() == DataType.FLOAT) {
          SGEMM.invokeExact(
              ROW_MAJOR,
              ta,
              tb,
              (int) m,
              (int) n,
              (int) k,
              (float) alpha,
              floats(a, offA),
              (int) opA[1],
              floats(b, offB),
              (int) opB[1],
              (float) beta,
              floats(c, offC),
              (int) ldc);
        } else {
          DGEMM.invokeExact(
              ROW_MAJOR,
              ta,
              tb,
              (int) m,
              (int) n,
              (int) k,
              alpha,
              doubles(a, offA),
              (int) opA[1],
              doubles(b, offB),
              (int) opB[1],
              beta,
              doubles(c, offC),
              (int) ldc);
        }
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException(e);
      }
      return true;
    }

    /** cblas_?gemm on explicit sub-blocks (see {@link Gemm#tile}); operands already usable. */
    static void raw(
        INDArray a,
        long offA,
        int lda,
        boolean transA,
        INDArray b,
        long offB,
        int ldb,
        boolean transB,
        INDArray c,
        long offC,
        int ldc,
        int m,
        int n,
        int k,
        double alpha,
        double beta) {
      int ta = transA ? TRANS : NO_TRANS;
      int tb = transB ? TRANS : NO_TRANS;
      try {
        if (c.dataType() == DataType.FLOAT) {
          SGEMM.invokeExact(
              ROW_MAJOR,
              ta,
              tb,
              m,
              n,
              k,
              (float) alpha,
              floats(a, offA),
              lda,
              floats(b, offB),
              ldb,
              (float) beta,
              floats(c, offC),
              ldc);
        } else {
          DGEMM.invokeExact(
              ROW_MAJOR,
              ta,
              tb,
              m,
              n,
              k,
              alpha,
              doubles(a, offA),
              lda,
              doubles(b, offB),
              ldb,
              beta,
              doubles(c, offC),
              ldc);
        }
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException(e);
      }
    }

    /**
     * {transpose flag for row-major BLAS, leading dimension} of op(x), or null when neither of x's
     * last two dimensions is contiguous. A row-contiguous x is itself row-major; a
     * column-contiguous one (a transposed view, an f-order array) is the row-major transpose.
     */
    private static long[] layout(INDArray x, boolean trans) {
      int r = x.rank();
      long rows = x.size(r - 2);
      long cols = x.size(r - 1);
      long s0 = x.stride(r - 2);
      long s1 = x.stride(r - 1);
      if (s1 == 1 || cols == 1) {
        long ld = Math.max(rows == 1 ? cols : s0, cols);
        return ld > Integer.MAX_VALUE ? null : new long[] {trans ? 1 : 0, ld};
      }
      if (s0 == 1 || rows == 1) {
        long ld = Math.max(cols == 1 ? rows : s1, rows);
        return ld > Integer.MAX_VALUE ? null : new long[] {trans ? 0 : 1, ld};
      }
      return null;
    }

    private static FloatPointer floats(INDArray x, long off) {
      FloatPointer p = new FloatPointer((Pointer) x.data().addressPointer());
      return off == 0 ? p : p.position(p.position() + off);
    }

    private static DoublePointer doubles(INDArray x, long off) {
      DoublePointer p = new DoublePointer((Pointer) x.data().addressPointer());
      return off == 0 ? p : p.position(p.position() + off);
    }
  }
}
