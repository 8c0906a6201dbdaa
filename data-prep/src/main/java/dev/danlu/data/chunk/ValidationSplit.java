package dev.danlu.data.chunk;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Deterministic train/validation assignment.
 *
 * <p>A unit (a group of lines, or a block in file mode) goes to validation iff the first 8 bytes of
 * {@code sha256("<source sha256 hex>:<unit>")}, read as an unsigned big-endian integer and divided
 * by 2^64, are below the fraction. It depends only on the file's content and the unit's position,
 * so it is the same whatever the partitioning, run order or retries, and an unchanged file keeps
 * its assignment across incremental runs.
 */
public final class ValidationSplit {
  /** The reference project's effective validation fraction (0.1%). */
  public static final double DEFAULT_FRACTION = 0.001;

  private ValidationSplit() {}

  public static boolean isValidation(String sourceSha256, long unit, double fraction) {
    if (fraction <= 0) {
      return false;
    }
    if (fraction >= 1) {
      return true;
    }
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] h = md.digest((sourceSha256 + ":" + unit).getBytes(StandardCharsets.US_ASCII));
    long bits = ByteBuffer.wrap(h, 0, 8).getLong();
    // Unsigned 64-bit value scaled to [0, 1): top 53 bits give an exact double.
    double u = (bits >>> 11) * 0x1.0p-53;
    return u < fraction;
  }
}
