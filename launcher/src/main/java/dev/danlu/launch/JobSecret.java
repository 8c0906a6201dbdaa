package dev.danlu.launch;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The per-job secret and the MACs derived from it. The driver makes the secret and ships it to the
 * tasks inside the task closure (see docs/launcher.md, "Trust model"); ranks and the progress
 * endpoint never send the secret itself, only HMACs of a purpose label.
 */
public final class JobSecret {
  public static final int BYTES = 32;
  private static final SecureRandom RANDOM = new SecureRandom();

  private JobSecret() {}

  public static byte[] generate() {
    byte[] s = new byte[BYTES];
    RANDOM.nextBytes(s);
    return s;
  }

  /** HMAC-SHA256 of {@code label} under {@code secret}. */
  public static byte[] mac(byte[] secret, String label) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      return mac.doFinal(label.getBytes(StandardCharsets.UTF_8));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  public static String macHex(byte[] secret, String label) {
    return HexFormat.of().formatHex(mac(secret, label));
  }

  /** Constant-time comparison, so a wrong token leaks nothing through timing. */
  public static boolean matches(byte[] expected, byte[] actual) {
    return actual != null && MessageDigest.isEqual(expected, actual);
  }
}
