package dev.danlu.train.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * NCCL's unique-id exchange between real ranks (threads) over train-local's real {@link
 * MasterRendezvous} on 127.0.0.1, with a made-up id in place of {@code ncclGetUniqueId}: the bytes
 * arrive intact everywhere, only rank 0 makes one, and misconfigurations fail on every rank alike.
 */
class NcclIdExchangeTest {
  private static final byte[] SECRET = "job-secret".getBytes(StandardCharsets.UTF_8);

  private final List<MasterRendezvous.Server> masters = new ArrayList<>();

  /** A launcher-held master for {@code world} ranks, closed after the test. */
  private int masterPort(int world) throws IOException {
    MasterRendezvous.Server m = MasterRendezvous.Server.start("127.0.0.1", world, SECRET);
    masters.add(m);
    return m.port();
  }

  @AfterEach
  void closeMasters() {
    masters.forEach(MasterRendezvous.Server::close);
  }

  private static MasterRendezvous rdv(int rank, int world, int port) {
    return new MasterRendezvous(rank, world, "127.0.0.1", port, SECRET, 30_000, false);
  }

  /** What each rank got: its id, or the exception it failed with. */
  private List<Object> exchange(int world, String[] hosts, int[] devices, byte[] id)
      throws Exception {
    int port = masterPort(world);
    return RankThreads.run(
        world,
        r -> {
          try {
            return NcclIdExchange.exchange(
                r, world, hosts[r], "cuda:" + devices[r], rdv(r, world, port), id::clone);
          } catch (RuntimeException e) {
            return e;
          }
        });
  }

  @Test
  void rankZerosIdReachesEveryRankAndOnlyRankZeroMakesOne() throws Exception {
    byte[] id = new byte[NcclIdExchange.ID_BYTES];
    new Random(4).nextBytes(id);
    AtomicInteger made = new AtomicInteger();
    int world = 4;
    int port = masterPort(world);
    List<byte[]> got =
        RankThreads.run(
            world,
            r ->
                NcclIdExchange.exchange(
                    r,
                    world,
                    "host-" + (r / 2), // two hosts, two GPUs each
                    "0000:0" + (r % 2) + ":00.0", // PCI bus ids
                    rdv(r, world, port),
                    () -> {
                      made.incrementAndGet();
                      return id.clone();
                    }));
    assertEquals(1, made.get());
    for (byte[] b : got) {
      assertArrayEquals(id, b);
    }
  }

  @Test
  void twoRanksOnOneGpuFailEverywhereNamingBoth() throws Exception {
    List<Object> got =
        exchange(
            3,
            new String[] {"h", "h", "h"},
            new int[] {0, 1, 1},
            new byte[NcclIdExchange.ID_BYTES]);
    for (Object o : got) {
      CommException e = assertInstanceOf(CommException.class, o);
      assertTrue(
          e.getMessage().contains("ranks 1 and 2 both drive GPU cuda:1 of host h"), e.getMessage());
    }
  }

  @Test
  void aRankThatChoseTcpIsNamed() throws Exception {
    int port = masterPort(2);
    List<Object> got =
        RankThreads.run(
            2,
            r -> {
              try {
                if (r == 1) { // what a TCP rank contributes: its ring address
                  return rdv(r, 2, port).allGather("127.0.0.1:40001");
                }
                return NcclIdExchange.exchange(
                    r, 2, "h", "cuda:0", rdv(r, 2, port), () -> new byte[NcclIdExchange.ID_BYTES]);
              } catch (RuntimeException e) {
                return e;
              }
            });
    CommException e = assertInstanceOf(CommException.class, got.get(0));
    assertTrue(
        e.getMessage().contains("rank 1 sent '127.0.0.1:40001'")
            && e.getMessage().contains("ddp_backend"),
        e.getMessage());
  }

  @Test
  void aMalformedIdIsRefusedBeforeItTravels() throws Exception {
    CommException e =
        assertInstanceOf(
            CommException.class,
            exchange(1, new String[] {"h"}, new int[] {0}, new byte[12]).get(0));
    assertTrue(e.getMessage().contains("12 bytes, expected 128"), e.getMessage());
  }
}
