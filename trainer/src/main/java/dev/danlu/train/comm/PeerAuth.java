package dev.danlu.train.comm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Mutual HMAC-SHA256 challenge-response on a fresh connection, so only processes holding the job's
 * secret can join the ring and a rank never talks to a stranger that happens to hold the port. The
 * secret never crosses the wire; fresh nonces on both sides make a recorded handshake useless.
 *
 * <pre>
 * server -> client: "DANLU-R1" nonceS[32]
 * client -> server: clientRank[4] nonceC[32] HMAC(secret, "C" nonceS nonceC clientRank serverRank?)
 * server -> client: serverRank[4] HMAC(secret, "S" nonceC nonceS serverRank clientRank)
 * </pre>
 *
 * The client's MAC does not cover the server rank (it may not know whom it reached, e.g. the
 * rendezvous master); the server's MAC covers both ranks, so the client can check it reached the
 * rank it meant to.
 */
final class PeerAuth {
  private static final byte[] MAGIC = "DANLU-R1".getBytes(StandardCharsets.US_ASCII);
  private static final int NONCE = 32;
  private static final int MAC = 32;
  private static final SecureRandom RANDOM = new SecureRandom();

  private PeerAuth() {}

  /** Server side; returns the authenticated client's rank or throws {@link AuthException}. */
  static int acceptSide(SocketChannel ch, byte[] secret, int myRank, long deadlineNanos)
      throws IOException {
    String peer = NioIo.describe(ch);
    byte[] nonceS = nonce();
    ByteBuffer hello = ByteBuffer.allocate(MAGIC.length + NONCE).put(MAGIC).put(nonceS).flip();
    NioIo.writeFully(ch, hello, deadlineNanos, () -> "sending the challenge to " + peer);
    ByteBuffer reply = ByteBuffer.allocate(4 + NONCE + MAC);
    NioIo.readFully(ch, reply, deadlineNanos, () -> "waiting for the answer of " + peer);
    reply.flip();
    int clientRank = reply.getInt();
    byte[] nonceC = new byte[NONCE];
    reply.get(nonceC);
    byte[] mac = new byte[MAC];
    reply.get(mac);
    if (!MessageDigest.isEqual(mac, hmac(secret, 'C', nonceS, nonceC, clientRank))) {
      throw new AuthException(
          "connection from "
              + peer
              + " (claiming rank "
              + clientRank
              + ") failed authentication: "
              + "wrong job secret or not a danlu rank");
    }
    ByteBuffer ok = ByteBuffer.allocate(4 + MAC).putInt(myRank);
    ok.put(hmac(secret, 'S', nonceC, nonceS, myRank, clientRank)).flip();
    NioIo.writeFully(ch, ok, deadlineNanos, () -> "confirming authentication to " + peer);
    return clientRank;
  }

  /** Client side; returns the server's rank after verifying it knows the secret. */
  static int connectSide(
      SocketChannel ch, byte[] secret, int myRank, String peer, long deadlineNanos)
      throws IOException {
    ByteBuffer hello = ByteBuffer.allocate(MAGIC.length + NONCE);
    NioIo.readFully(ch, hello, deadlineNanos, () -> "waiting for the challenge of " + peer);
    hello.flip();
    byte[] magic = new byte[MAGIC.length];
    hello.get(magic);
    if (!MessageDigest.isEqual(magic, MAGIC)) {
      throw new AuthException(peer + " is not a danlu ring endpoint (bad greeting)");
    }
    byte[] nonceS = new byte[NONCE];
    hello.get(nonceS);
    byte[] nonceC = nonce();
    ByteBuffer answer = ByteBuffer.allocate(4 + NONCE + MAC).putInt(myRank).put(nonceC);
    answer.put(hmac(secret, 'C', nonceS, nonceC, myRank)).flip();
    NioIo.writeFully(ch, answer, deadlineNanos, () -> "answering the challenge of " + peer);
    ByteBuffer ok = ByteBuffer.allocate(4 + MAC);
    try {
      NioIo.readFully(ch, ok, deadlineNanos, () -> "waiting for " + peer + " to accept us");
    } catch (CommTimeoutException e) {
      throw e;
    } catch (CommException | IOException e) {
      throw new AuthException(
          peer + " rejected this rank's authentication (different job secret?)");
    }
    ok.flip();
    int serverRank = ok.getInt();
    byte[] mac = new byte[MAC];
    ok.get(mac);
    if (!MessageDigest.isEqual(mac, hmac(secret, 'S', nonceC, nonceS, serverRank, myRank))) {
      throw new AuthException(peer + " failed authentication: it does not hold this job's secret");
    }
    return serverRank;
  }

  private static byte[] nonce() {
    byte[] b = new byte[NONCE];
    RANDOM.nextBytes(b);
    return b;
  }

  private static byte[] hmac(byte[] secret, char role, byte[] n1, byte[] n2, int... ranks) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      mac.update((byte) role);
      mac.update(n1);
      mac.update(n2);
      for (int r : ranks) {
        mac.update(ByteBuffer.allocate(4).putInt(r).array());
      }
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable in this JVM", e);
    }
  }

  /** Authentication failed: the connection is dropped, the listener keeps serving. */
  static final class AuthException extends CommException {
    AuthException(String message) {
      super(message);
    }
  }
}
