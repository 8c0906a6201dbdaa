package dev.danlu.data.manifest;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which small files share shards: the packing groups of a dataset version, decided from the
 * previous version's groups and what changed (docs/data-format.md, "Packing groups").
 *
 * <p>A corpus of many small files must not become one task and one shard per file, yet the nightly
 * refresh must not rewrite everything when one file is added. So small files are packed into groups
 * of about {@code groupBytes}; a group is the unit of reuse (all of its shards are kept, or all
 * rewritten), and membership is sticky: an unchanged group keeps its shards byte for byte whatever
 * else is added around it. Only groups that lost or changed a member are rewritten, together with
 * the new files; when nothing but additions happened, at most one undersized group is reopened to
 * take them, so repeated small additions do not leave a trail of tiny groups.
 *
 * <p>Grouping never changes which blocks exist: the reference groups lines per file (its
 * group_texts runs on each file's own dataset), and so does every task, whatever files it shares
 * shards with.
 */
public final class FileGroups {
  /**
   * A file that will be in the new version (skipped files are not passed).
   *
   * @param path the source URI; files are passed in path order
   * @param size bytes now
   * @param sha256 content hash now (from the scan, or the previous version when trusted)
   * @param changed its content must be tokenized: new, changed, or previously skipped
   * @param prevGroup its group in the previous version, null if none
   * @param prevAlone it was in the previous version, prepared on its own (a big file, or written by
   *     manifest format 1), and is unchanged: it keeps its shards
   */
  public record File(
      String path,
      long size,
      String sha256,
      boolean changed,
      String prevGroup,
      boolean prevAlone) {}

  /**
   * A group of the new version.
   *
   * @param members paths in path order
   * @param reused true if its shards are the previous version's, unchanged
   */
  public record Group(String id, List<String> members, long weight, boolean reused) {}

  /**
   * The grouping of the new version.
   *
   * @param groupOf each grouped file's group id; a file absent from it is prepared on its own
   * @param groups every group of the new version, in the order of their first member
   * @param dissolved previous groups whose shards are no longer used
   */
  public record Plan(Map<String, String> groupOf, List<Group> groups, List<String> dissolved) {
    public List<Group> written() {
      return groups.stream().filter(g -> !g.reused()).toList();
    }
  }

  /**
   * Sizes that decide the packing.
   *
   * @param packLimit a changed file larger than this is prepared on its own (split by byte ranges
   *     like any big file)
   * @param groupBytes a group's weight stays at most this
   * @param openCost added to each file's size in a group's weight: a file costs an open and a
   *     metadata round trip however small it is (Spark's {@code openCostInBytes} idea)
   */
  public record Limits(long packLimit, long groupBytes, long openCost) {
    public Limits {
      if (packLimit < 0 || groupBytes <= 0 || openCost < 0) {
        throw new IllegalArgumentException(
            "bad group limits " + packLimit + ", " + groupBytes + ", " + openCost);
      }
    }

    long weight(long size) {
      return size + openCost;
    }
  }

  private FileGroups() {}

  /**
   * @param files the files of the new version, in path order
   * @param prevGroups the previous version's groups: id to member paths (including members no
   *     longer listed)
   */
  public static Plan plan(List<File> files, Map<String, List<String>> prevGroups, Limits lim) {
    Map<String, File> byPath = new HashMap<>();
    files.forEach(f -> byPath.put(f.path(), f));

    // A previous group is clean when every member is still here, unchanged: it keeps its shards.
    Set<String> clean = new HashSet<>();
    for (Map.Entry<String, List<String>> g : prevGroups.entrySet()) {
      boolean ok = !g.getValue().isEmpty();
      for (String m : g.getValue()) {
        File f = byPath.get(m);
        ok &= f != null && !f.changed() && g.getKey().equals(f.prevGroup());
      }
      if (ok) {
        clean.add(g.getKey());
      }
    }
    List<String> dissolved = new ArrayList<>();
    for (String g : prevGroups.keySet()) {
      if (!clean.contains(g)) {
        dissolved.add(g);
      }
    }

    // The pool: members of dissolved groups, and changed or new files small enough to pack.
    Map<String, String> groupOf = new HashMap<>();
    List<File> pool = new ArrayList<>();
    Map<String, Long> cleanWeight = new HashMap<>();
    for (File f : files) {
      if (f.prevGroup() != null && clean.contains(f.prevGroup())) {
        groupOf.put(f.path(), f.prevGroup());
        cleanWeight.merge(f.prevGroup(), lim.weight(f.size()), Long::sum);
      } else if (f.changed() ? f.size() <= lim.packLimit() : f.prevGroup() != null) {
        pool.add(f); // a changed small file, or an unchanged member of a dissolved group
      } else if (!f.changed() && !f.prevAlone()) {
        throw new IllegalArgumentException(
            f.path() + ": unchanged, but neither grouped nor prepared alone before");
      }
    }
    // Only additions: reopen the lightest undersized group for them instead of starting another
    // small one (bounded: one group per run).
    if (!pool.isEmpty() && dissolved.isEmpty()) {
      cleanWeight.entrySet().stream()
          .filter(e -> e.getValue() < lim.groupBytes() / 2)
          .min(Map.Entry.<String, Long>comparingByValue().thenComparing(Map.Entry.comparingByKey()))
          .ifPresent(
              e -> {
                String g = e.getKey();
                clean.remove(g);
                dissolved.add(g);
                for (File f : files) {
                  if (g.equals(groupOf.get(f.path()))) {
                    groupOf.remove(f.path());
                    pool.add(f);
                  }
                }
                pool.sort(Comparator.comparing(File::path));
              });
    }

    // Pack the pool in path order into groups of about equal weight, each at most groupBytes.
    Map<String, Group> built = new LinkedHashMap<>();
    long total = pool.stream().mapToLong(f -> lim.weight(f.size())).sum();
    long n = Math.max(1, (total + lim.groupBytes() - 1) / lim.groupBytes());
    long target = (total + n - 1) / n;
    List<File> cur = new ArrayList<>();
    long curWeight = 0;
    for (File f : pool) {
      long w = lim.weight(f.size());
      if (!cur.isEmpty() && (curWeight + w > lim.groupBytes() || curWeight >= target)) {
        close(cur, curWeight, built, groupOf);
        cur = new ArrayList<>();
        curWeight = 0;
      }
      cur.add(f);
      curWeight += w;
    }
    if (!cur.isEmpty()) {
      close(cur, curWeight, built, groupOf);
    }

    // Every group of the new version, in the order of its first member.
    Map<String, List<String>> members = new LinkedHashMap<>();
    for (File f : files) {
      String g = groupOf.get(f.path());
      if (g != null) {
        members.computeIfAbsent(g, k -> new ArrayList<>()).add(f.path());
      }
    }
    List<Group> groups = new ArrayList<>();
    for (Map.Entry<String, List<String>> e : members.entrySet()) {
      Group b = built.get(e.getKey());
      long w = cleanWeight.getOrDefault(e.getKey(), b == null ? 0 : b.weight());
      // A reopened group packed again exactly as it was (same members, same content): same id,
      // and its shards are still valid.
      boolean again = b != null && dissolved.remove(e.getKey());
      groups.add(new Group(e.getKey(), List.copyOf(e.getValue()), w, b == null || again));
    }
    dissolved.sort(null);
    return new Plan(Map.copyOf(groupOf), List.copyOf(groups), List.copyOf(dissolved));
  }

  private static void close(
      List<File> cur, long weight, Map<String, Group> built, Map<String, String> groupOf) {
    String id = id(cur);
    built.put(id, new Group(id, cur.stream().map(File::path).toList(), weight, false));
    cur.forEach(f -> groupOf.put(f.path(), id));
  }

  /**
   * A group's id names its content: the first 16 hex digits of sha256 over its members' paths and
   * content hashes. New content always gets a new id, so new shards never overwrite committed ones.
   */
  static String id(List<File> members) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (File f : members) {
        md.update((f.path() + "\t" + f.sha256() + "\n").getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
