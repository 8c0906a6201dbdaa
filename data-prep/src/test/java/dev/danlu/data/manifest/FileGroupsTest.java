package dev.danlu.data.manifest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Packing groups: bounded, sticky, and rewriting only what changed (plus at most one). */
class FileGroupsTest {
  static final FileGroups.Limits LIM = new FileGroups.Limits(1000, 4000, 10);

  /** A corpus as path -> (size, content version); the previous plan gives groups. */
  static final class Corpus {
    final TreeMap<String, long[]> files = new TreeMap<>();
    FileGroups.Plan prev;
    Map<String, long[]> prevFiles = Map.of();

    FileGroups.Plan refresh() {
      Map<String, String> prevGroupOf = prev == null ? Map.of() : prev.groupOf();
      List<FileGroups.File> in = new ArrayList<>();
      for (Map.Entry<String, long[]> e : files.entrySet()) {
        long[] before = prevFiles.get(e.getKey());
        boolean changed =
            before == null || before[0] != e.getValue()[0] || before[1] != e.getValue()[1];
        String g = prevGroupOf.get(e.getKey());
        in.add(
            new FileGroups.File(
                e.getKey(),
                e.getValue()[0],
                "sha" + e.getValue()[1],
                changed,
                g,
                before != null && g == null && !changed));
      }
      Map<String, List<String>> prevGroups = new HashMap<>();
      if (prev != null) {
        prev.groups().forEach(g -> prevGroups.put(g.id(), g.members()));
      }
      FileGroups.Plan p = FileGroups.plan(in, prevGroups, LIM);
      check(p, in);
      prev = p;
      prevFiles = new HashMap<>();
      files.forEach((k, v) -> prevFiles.put(k, v.clone()));
      return p;
    }

    void check(FileGroups.Plan p, List<FileGroups.File> in) {
      Set<String> seen = new HashSet<>();
      for (FileGroups.Group g : p.groups()) {
        long w = 0;
        for (String m : g.members()) {
          assertTrue(seen.add(m), m + " in two groups");
          assertEquals(g.id(), p.groupOf().get(m));
          w += files.get(m)[0] + LIM.openCost();
        }
        assertEquals(w, g.weight(), g.id());
        assertTrue(w <= LIM.groupBytes(), "group " + g.id() + " weighs " + w);
      }
      for (FileGroups.File f : in) {
        boolean grouped = p.groupOf().containsKey(f.path());
        assertEquals(grouped, seen.contains(f.path()));
        if (!grouped) {
          assertTrue(f.size() > LIM.packLimit() || f.prevAlone(), f + " left alone");
        }
      }
    }
  }

  static Set<String> written(FileGroups.Plan p) {
    Set<String> ids = new HashSet<>();
    p.written().forEach(g -> ids.add(g.id()));
    return ids;
  }

  @Test
  void freshCorpusPacksSmallFilesInPathOrderAndLeavesBigOnesAlone() {
    Corpus c = new Corpus();
    for (int i = 0; i < 40; i++) {
      c.files.put(String.format("f%03d", i), new long[] {i == 7 ? 5000 : 300, 0});
    }
    FileGroups.Plan p = c.refresh();
    assertFalse(p.groupOf().containsKey("f007"), "bigger than packLimit: alone");
    // 39 x 310 = 12090 of weight -> 4 groups of about equal weight, none above 4000.
    assertEquals(4, p.groups().size());
    assertTrue(p.groups().stream().noneMatch(FileGroups.Group::reused));
    List<String> order = new ArrayList<>();
    p.groups().forEach(g -> order.addAll(g.members()));
    assertEquals(order.stream().sorted().toList(), order, "contiguous runs in path order");
    assertEquals(List.of(), p.dissolved());

    // No change: every group reused, same ids.
    FileGroups.Plan same = c.refresh();
    assertEquals(
        p.groups().stream().map(FileGroups.Group::id).toList(),
        same.groups().stream().map(FileGroups.Group::id).toList());
    assertTrue(same.groups().stream().allMatch(FileGroups.Group::reused));
  }

  @Test
  void oneAddedFileRewritesAtMostOneGroup() {
    Corpus c = new Corpus();
    for (int i = 0; i < 40; i++) {
      c.files.put(String.format("f%03d", i), new long[] {300, 0});
    }
    FileGroups.Plan before = c.refresh();
    // Every group is above half the target: the addition gets a group of its own.
    c.files.put("f0205", new long[] {100, 0});
    FileGroups.Plan p = c.refresh();
    assertEquals(1, written(p).size());
    assertEquals(List.of("f0205"), p.written().get(0).members());
    assertEquals(before.groups().size() + 1, p.groups().size());
    // The next addition reopens that undersized group (one group rewritten, no new one).
    c.files.put("f0399", new long[] {100, 0});
    FileGroups.Plan q = c.refresh();
    assertEquals(1, written(q).size());
    assertEquals(List.of("f0205", "f0399"), q.written().get(0).members());
    assertEquals(p.groups().size(), q.groups().size());
    assertEquals(1, q.dissolved().size());
  }

  @Test
  void aChangedOrRemovedFileRewritesOnlyItsGroup() {
    Corpus c = new Corpus();
    for (int i = 0; i < 40; i++) {
      c.files.put(String.format("f%03d", i), new long[] {300, 0});
    }
    FileGroups.Plan before = c.refresh();
    String victim = "f013";
    String g = before.groupOf().get(victim);
    c.files.get(victim)[1]++; // same size, new content
    FileGroups.Plan p = c.refresh();
    assertEquals(List.of(g), p.dissolved());
    assertEquals(1, p.written().size());
    assertEquals(
        before.groups().stream().filter(x -> x.id().equals(g)).findFirst().orElseThrow().members(),
        p.written().get(0).members(),
        "same members, new content, new id");
    assertFalse(p.written().get(0).id().equals(g));

    String gone = "f030";
    String g2 = p.groupOf().get(gone);
    c.files.remove(gone);
    FileGroups.Plan q = c.refresh();
    assertEquals(List.of(g2), q.dissolved());
    assertEquals(1, q.written().size());
    assertFalse(q.written().get(0).members().contains(gone));

    // A member that grows past packLimit leaves for a life alone; its old group is rewritten.
    c.files.put("f001", new long[] {2000, 5});
    FileGroups.Plan r = c.refresh();
    assertFalse(r.groupOf().containsKey("f001"));
    assertEquals(1, r.dissolved().size());
  }

  /** A year of random nightly refreshes: the bounds hold every night. */
  @Test
  void nightlyRefreshesKeepGroupsBoundedAndRewritesLocal() {
    Random rnd = new Random(7);
    Corpus c = new Corpus();
    int next = 0;
    for (; next < 200; next++) {
      c.files.put(
          String.format("n%05d", rnd.nextInt(100000)), new long[] {50 + rnd.nextInt(900), 0});
    }
    c.refresh();
    for (int night = 0; night < 365; night++) {
      Set<String> touchedGroups = new HashSet<>();
      int adds = rnd.nextInt(4);
      for (int a = 0; a < adds; a++) {
        c.files.put(
            String.format("n%05d", rnd.nextInt(100000)), new long[] {50 + rnd.nextInt(900), 0});
      }
      if (rnd.nextInt(5) == 0 && !c.files.isEmpty()) {
        String k = new ArrayList<>(c.files.keySet()).get(rnd.nextInt(c.files.size()));
        if (c.prev.groupOf().containsKey(k)) {
          touchedGroups.add(c.prev.groupOf().get(k));
        }
        if (rnd.nextBoolean()) {
          c.files.remove(k);
        } else {
          c.files.get(k)[1]++;
        }
      }
      FileGroups.Plan p = c.refresh();
      Set<String> dissolved = new HashSet<>(p.dissolved());
      dissolved.removeAll(touchedGroups);
      assertTrue(
          dissolved.size() <= (touchedGroups.isEmpty() && adds > 0 ? 1 : 0),
          "night " + night + ": rewrote " + p.dissolved() + " for changes in " + touchedGroups);
    }
    // Groups stay reasonably full: at most one undersized group beyond those a removal shrank.
    long total = c.prev.groups().stream().mapToLong(FileGroups.Group::weight).sum();
    assertTrue(
        c.prev.groups().size() <= 2 * (total / LIM.groupBytes() + 1) + 12,
        c.prev.groups().size() + " groups for weight " + total);
  }
}
