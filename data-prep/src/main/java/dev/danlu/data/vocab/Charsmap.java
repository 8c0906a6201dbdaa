package dev.danlu.data.vocab;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * SentencePiece's {@code precompiled_charsmap}: normalization rules as stored in a model's
 * NormalizerSpec and applied by spm_encode, python sentencepiece and DJL. The blob is a
 * little-endian uint32 byte length of a darts-clone double array, the array (uint32 units), then
 * the rules' results as NUL-terminated UTF-8 strings. The double array maps a rule's UTF-8 key to
 * the byte offset of its result; the normalizer takes the longest key that prefixes the input.
 *
 * <p>Unit layout (darts-clone): bits 0-7 the label, bit 8 "has a leaf", bits 10-31 the offset to
 * the children's base (bit 9 set: shifted left by 8); a leaf unit holds {@code value | 1 << 31}.
 * The child of the unit at {@code p} with label {@code c} sits at {@code p ^ offset ^ c}, its leaf
 * at {@code p ^ offset}. This class builds the array its own way (a trie whose identical subtrees
 * share one children block, placed first-fit); spm's builder packs differently, so the bytes differ
 * from spm_train's while every lookup gives the same answer.
 */
public final class Charsmap {
  private static final Map<String, byte[]> CACHE = new ConcurrentHashMap<>();

  private final int[] units;
  private final byte[] strings;

  private Charsmap(int[] units, byte[] strings) {
    this.units = units;
    this.strings = strings;
  }

  /** The compiled rules of a named normalizer, empty for {@code identity}; cached per JVM. */
  public static byte[] forRule(String name) {
    return CACHE.computeIfAbsent(name, n -> compile(NormalizationRules.build(n))).clone();
  }

  // ---- reading ----

  /**
   * Reads a blob.
   *
   * @throws IllegalArgumentException if the blob is too short or its array size is inconsistent
   */
  public static Charsmap decode(byte[] blob) {
    if (blob.length <= 4) {
      throw new IllegalArgumentException(
          "precompiled_charsmap too short: " + blob.length + " bytes");
    }
    ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
    long trieBytes = b.getInt() & 0xffffffffL;
    if (trieBytes >= blob.length - 4L || trieBytes % 4 != 0) {
      throw new IllegalArgumentException(
          "precompiled_charsmap broken: array of "
              + trieBytes
              + " bytes in a blob of "
              + blob.length);
    }
    int[] units = new int[(int) (trieBytes / 4)];
    b.asIntBuffer().get(units);
    byte[] strings = Arrays.copyOfRange(blob, 4 + (int) trieBytes, blob.length);
    return new Charsmap(units, strings);
  }

  private static int offset(int unit) {
    return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
  }

  private static int label(int unit) {
    return unit & (0x80000000 | 0xFF);
  }

  private static boolean hasLeaf(int unit) {
    return ((unit >>> 8) & 1) == 1;
  }

  /**
   * The longest rule key that prefixes {@code in[from, to)}: its byte length in the high 32 bits
   * and the result's offset (see {@link #result}) in the low ones; 0 when no key matches.
   */
  public long longestMatch(byte[] in, int from, int to) {
    int pos = offset(units[0]);
    long best = 0;
    for (int i = from; i < to; i++) {
      int c = in[i] & 0xff;
      pos ^= c;
      if (pos >= units.length) {
        return best;
      }
      int u = units[pos];
      if (label(u) != c) {
        return best;
      }
      pos ^= offset(u);
      if (hasLeaf(u)) {
        best = ((long) (i + 1 - from) << 32) | (units[pos] & 0x7fffffffL);
      }
    }
    return best;
  }

  /** Start of a result string in {@link #strings()}; it ends at the next NUL. */
  public static int result(long match) {
    return (int) match;
  }

  public static int matchLength(long match) {
    return (int) (match >>> 32);
  }

  /** The NUL-terminated result strings. */
  public byte[] strings() {
    return strings;
  }

  /** Every rule, key to result (for tests and for comparing with another model's blob). */
  public TreeMap<String, String> rules() {
    TreeMap<String, String> out = new TreeMap<>(BpeTrainer::compareCodePoints);
    ArrayDeque<Object[]> stack = new ArrayDeque<>();
    stack.push(new Object[] {0, new byte[0]});
    while (!stack.isEmpty()) {
      Object[] top = stack.pop();
      int node = (Integer) top[0];
      byte[] key = (byte[]) top[1];
      int base = node ^ offset(units[node]);
      for (int c = 1; c < 256; c++) {
        int child = base ^ c;
        if (child >= units.length || label(units[child]) != c) {
          continue;
        }
        byte[] k = Arrays.copyOf(key, key.length + 1);
        k[key.length] = (byte) c;
        if (hasLeaf(units[child])) {
          int v = units[child ^ offset(units[child])] & 0x7fffffff;
          int end = v;
          while (strings[end] != 0) {
            end++;
          }
          out.put(
              new String(k, StandardCharsets.UTF_8),
              new String(strings, v, end - v, StandardCharsets.UTF_8));
        }
        stack.push(new Object[] {child, k});
      }
    }
    return out;
  }

  // ---- writing ----

  /** Compiles rules (keys non-empty) to a blob; no rules give an empty blob (identity). */
  public static byte[] compile(Map<String, String> rules) {
    if (rules.isEmpty()) {
      return new byte[0];
    }
    // Results: distinct, sorted by code points, NUL-terminated.
    TreeMap<String, Integer> resultPos = new TreeMap<>(BpeTrainer::compareCodePoints);
    for (String v : rules.values()) {
      resultPos.put(v, 0);
    }
    ByteArrayOutputStream strings = new ByteArrayOutputStream();
    for (Map.Entry<String, Integer> e : resultPos.entrySet()) {
      e.setValue(strings.size());
      strings.writeBytes(e.getKey().getBytes(StandardCharsets.UTF_8));
      strings.write(0);
    }
    // The byte trie of the keys.
    Node root = new Node();
    for (Map.Entry<String, String> e : rules.entrySet()) {
      byte[] k = e.getKey().getBytes(StandardCharsets.UTF_8);
      if (k.length == 0) {
        throw new IllegalArgumentException("an empty normalization rule key");
      }
      Node n = root;
      for (byte x : k) {
        if (x == 0) {
          throw new IllegalArgumentException("a normalization rule key with U+0000");
        }
        n = n.kids.computeIfAbsent(x & 0xff, c -> new Node());
      }
      n.value = resultPos.get(e.getValue());
    }
    int[] units = new Builder().build(root);
    ByteBuffer out =
        ByteBuffer.allocate(4 + units.length * 4 + strings.size()).order(ByteOrder.LITTLE_ENDIAN);
    out.putInt(units.length * 4);
    for (int u : units) {
      out.putInt(u);
    }
    out.put(strings.toByteArray());
    return out.array();
  }

  private static final class Node {
    final TreeMap<Integer, Node> kids = new TreeMap<>();
    int value = -1;
    int cls;
  }

  /** A subtree shape: its leaf value and children (label, shape id). */
  private record Shape(int value, List<Integer> kids) {}

  private static final class Builder {
    private final Map<Shape, Integer> shapes = new HashMap<>();
    private final List<Node> representative = new ArrayList<>();
    private int[] base = new int[0];
    private int[] units = new int[1 << 16];
    private final BitSet used = new BitSet();
    private final BitSet usedBase = new BitSet();
    private int maxPos;

    int[] build(Node root) {
      classify(root);
      base = new int[shapes.size()];
      Arrays.fill(base, -1);
      used.set(0);
      ArrayDeque<int[]> queue = new ArrayDeque<>(); // {position, shape, label}
      queue.add(new int[] {0, root.cls, 0});
      while (!queue.isEmpty()) {
        int[] q = queue.poll();
        int pos = q[0];
        Node n = representative.get(q[1]);
        int b = base[q[1]];
        if (b < 0) {
          b = place(n, pos);
          base[q[1]] = b;
          if (n.value >= 0) {
            set(b, n.value | 0x80000000);
          }
          for (Map.Entry<Integer, Node> k : n.kids.entrySet()) {
            queue.add(new int[] {b ^ k.getKey(), k.getValue().cls, k.getKey()});
          }
        }
        int off = pos ^ b;
        if (off == 0 || off >= 1 << 21) {
          throw new IllegalStateException("charsmap double array offset out of range: " + off);
        }
        set(pos, q[2] | (n.value >= 0 ? 1 << 8 : 0) | (off << 10));
      }
      int size = (maxPos / 256 + 1) * 256;
      return Arrays.copyOf(units, size);
    }

    private int classify(Node n) {
      List<Integer> kids = new ArrayList<>(n.kids.size() * 2);
      for (Map.Entry<Integer, Node> k : n.kids.entrySet()) {
        kids.add(k.getKey());
        kids.add(classify(k.getValue()));
      }
      Shape s = new Shape(n.value, kids);
      Integer id = shapes.get(s);
      if (id == null) {
        id = shapes.size();
        shapes.put(s, id);
        representative.add(n);
      }
      n.cls = id;
      return id;
    }

    /** The first base whose leaf and child slots are all free (bases are never shared). */
    private int place(Node n, int pos) {
      int[] labels = new int[n.kids.size() + (n.value >= 0 ? 1 : 0)];
      int i = 0;
      if (n.value >= 0) {
        labels[i++] = 0;
      }
      for (int c : n.kids.keySet()) {
        labels[i++] = c;
      }
      int first = labels[0];
      for (int q = used.nextClearBit(0); ; q = used.nextClearBit(q + 1)) {
        int b = q ^ first;
        if (b == pos || usedBase.get(b)) {
          continue;
        }
        boolean ok = true;
        for (int k = 1; k < labels.length && ok; k++) {
          ok = !used.get(b ^ labels[k]);
        }
        if (ok) {
          usedBase.set(b);
          for (int c : labels) {
            used.set(b ^ c);
            maxPos = Math.max(maxPos, b ^ c);
          }
          return b;
        }
      }
    }

    private void set(int pos, int unit) {
      if (pos >= units.length) {
        units = Arrays.copyOf(units, Math.max(pos + 1, units.length * 2));
      }
      units[pos] = unit;
      maxPos = Math.max(maxPos, pos);
    }
  }
}
