package dev.danlu.train.comm;

/**
 * Tuning and timeouts of the TCP ring.
 *
 * @param connectTimeoutMillis how long setup waits for the neighbours to connect and authenticate
 * @param opTimeoutMillis how long a collective may go without any byte moving before it fails
 *     (covers a dead or stalled peer; a slow but progressing peer never trips it)
 * @param handshakeTimeoutMillis how long one incoming connection may take to authenticate, so a
 *     silent stranger cannot hold the port
 * @param sliceBytes largest pipelining granularity: a chunk is sent in slices of a quarter of the
 *     chunk, between 1 MB and this size (default 4 MB), and a slice is forwarded as soon as it is
 *     reduced, overlapping reduction with transfer; it also sizes the two staging buffers
 * @param socketBufferBytes SO_SNDBUF/SO_RCVBUF for ring sockets; 0 (the default) leaves Linux's
 *     autotuning on, which grows buffers up to net.ipv4.tcp_rmem/tcp_wmem's maximum, whereas an
 *     explicit value disables autotuning and is capped by net.core.rmem_max/wmem_max
 */
public record TcpRingOptions(
    long connectTimeoutMillis,
    long opTimeoutMillis,
    long handshakeTimeoutMillis,
    int sliceBytes,
    int socketBufferBytes) {

  public TcpRingOptions {
    if (sliceBytes < 4 || sliceBytes % 4 != 0) {
      throw new IllegalArgumentException(
          "sliceBytes must be a positive multiple of 4: " + sliceBytes);
    }
  }

  public static TcpRingOptions defaults() {
    return new TcpRingOptions(120_000, 600_000, 10_000, 4 << 20, 0);
  }

  public TcpRingOptions withConnectTimeoutMillis(long ms) {
    return new TcpRingOptions(
        ms, opTimeoutMillis, handshakeTimeoutMillis, sliceBytes, socketBufferBytes);
  }

  public TcpRingOptions withOpTimeoutMillis(long ms) {
    return new TcpRingOptions(
        connectTimeoutMillis, ms, handshakeTimeoutMillis, sliceBytes, socketBufferBytes);
  }

  public TcpRingOptions withSocketBufferBytes(int bytes) {
    return new TcpRingOptions(
        connectTimeoutMillis, opTimeoutMillis, handshakeTimeoutMillis, sliceBytes, bytes);
  }

  public TcpRingOptions withSliceBytes(int bytes) {
    return new TcpRingOptions(
        connectTimeoutMillis, opTimeoutMillis, handshakeTimeoutMillis, bytes, socketBufferBytes);
  }
}
