package dev.danlu.data.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A pure-Java re-implementation of SentencePiece's BPE encoder ({@code bpe_model.cc} plus the
 * identity normalizer and byte fallback of {@code sentencepiece_processor.cc}) for the models LLaMA
 * uses, because a JNI call per line through DJL costs about what {@code spm_encode} does
 * (0.85-1.0x) and the prep job's goal is to beat it per core including Arrow writing.
 *
 * <p>The algorithm is the library's: the normalized line ("▁" + text with ' ' → '▁') is split into
 * characters, then the adjacent pair whose concatenation is the highest-scoring piece is merged,
 * leftmost first on equal scores, until no pair is a piece; characters left that are not pieces
 * become their UTF-8 byte pieces {@code <0xXX>}. The speed comes from working on integer symbol
 * keys: every way to split each piece into two symbols is precomputed into a pair table, so a merge
 * candidate is one hash probe instead of hashing a substring. And since no LLaMA piece has a '▁'
 * after another character, no merge crosses a word start: words are encoded independently and short
 * ones come from a per-thread cache.
 *
 * <p>Only models this reproduces exactly are accepted ({@link #supports}); ids are checked
 * id-for-id against {@code spm_encode} in the tests. Thread-safe: immutable tables, per-call state
 * and per-thread caches.
 */
final class SentencePieceBpe {
  private final int vocabSize;
  private final float[] scores;
  private final int[] bmpKey; // code point → symbol key; NO_KEY if no piece contains it
  private final Map<Integer, Integer> astralKey;
  private final long[] pairKeys; // open-addressing table (keyL << 32 | keyR) → merged piece id
  private final int[] pairValues;
  private final int pairMask;
  private final int[] byteIds = new int[256];
  private final boolean wordsAreIndependent;

  private static final int NO_KEY = -1;
  private static final long EMPTY = -1L;
  private static final int SPACE_SYMBOL = 0x2581; // '▁'

  /** Why {@code model} cannot be encoded here, or null if it can. */
  static String supports(SentencePieceModel model) {
    if (model.modelType() != SentencePieceModel.MODEL_BPE) {
      return "model type " + model.modelType() + " is not BPE";
    }
    if (!model.byteFallback()) {
      return "byte_fallback is off";
    }
    if (model.precompiledCharsmapBytes() > 0) {
      return "normalizer '" + model.normalizerName() + "' is not identity";
    }
    if (model.removeExtraWhitespaces()
        || !model.addDummyPrefix()
        || !model.escapeWhitespaces()
        || model.treatWhitespaceAsSuffix()) {
      return "whitespace options differ from LLaMA's";
    }
    for (int i = 0; i < model.size(); i++) {
      int type = model.type(i);
      if (type == SentencePieceModel.USER_DEFINED || type == SentencePieceModel.UNUSED) {
        return "has USER_DEFINED/UNUSED pieces";
      }
    }
    for (int b = 0; b < 256; b++) {
      if (model.id(bytePiece(b)) < 0) {
        return "byte piece " + bytePiece(b) + " is missing";
      }
    }
    return null;
  }

  SentencePieceBpe(SentencePieceModel model) {
    String unsupported = supports(model);
    if (unsupported != null) {
      throw new IllegalArgumentException("pure-Java BPE cannot encode this model: " + unsupported);
    }
    vocabSize = model.size();
    scores = new float[vocabSize];
    for (int i = 0; i < vocabSize; i++) {
      scores[i] = model.score(i);
    }
    for (int b = 0; b < 256; b++) {
      byteIds[b] = model.id(bytePiece(b));
    }
    // Symbol keys: a piece's id, or for a character that is not itself a piece but occurs inside
    // one, an extra key >= vocabSize (it can still merge with a neighbour into that piece).
    bmpKey = new int[0x10000];
    Arrays.fill(bmpKey, NO_KEY);
    astralKey = new HashMap<>();
    for (int i = 0; i < vocabSize; i++) {
      String p = model.piece(i);
      if (p.codePointCount(0, p.length()) == 1) {
        setKey(p.codePointAt(0), i);
      }
    }
    int nextExtra = vocabSize;
    int pairCount = 0;
    for (int i = 0; i < vocabSize; i++) {
      if (model.type(i) != SentencePieceModel.NORMAL) {
        continue;
      }
      String p = model.piece(i);
      for (int k = 0; k < p.length(); k += Character.charCount(p.codePointAt(k))) {
        int cp = p.codePointAt(k);
        if (key(cp) == NO_KEY) {
          setKey(cp, nextExtra++);
        }
      }
      pairCount += Math.max(0, p.codePointCount(0, p.length()) - 1);
    }
    int capacity = Integer.highestOneBit(Math.max(16, pairCount * 2)) << 1;
    pairKeys = new long[capacity];
    Arrays.fill(pairKeys, EMPTY);
    pairValues = new int[capacity];
    pairMask = capacity - 1;
    for (int i = 0; i < vocabSize; i++) {
      if (model.type(i) != SentencePieceModel.NORMAL) {
        continue;
      }
      String p = model.piece(i);
      if (p.isEmpty()) {
        continue;
      }
      int first = Character.charCount(p.codePointAt(0));
      for (int k = first; k < p.length(); k += Character.charCount(p.codePointAt(k))) {
        int left = symbolKey(model, p.substring(0, k));
        int right = symbolKey(model, p.substring(k));
        if (left != NO_KEY && right != NO_KEY) {
          putPair(left, right, i);
        }
      }
    }
    wordsAreIndependent = noPieceSpansWordStart(model);
  }

  /**
   * True if no piece has a '▁' right after another character (LLaMA's are trained with
   * split_by_whitespace), so no merge can cross the start of a word.
   */
  private static boolean noPieceSpansWordStart(SentencePieceModel model) {
    for (int i = 0; i < model.size(); i++) {
      String p = model.piece(i);
      for (int k = 1; k < p.length(); k++) {
        if (p.charAt(k) == SPACE_SYMBOL && p.charAt(k - 1) != SPACE_SYMBOL) {
          return false;
        }
      }
    }
    return true;
  }

  static String bytePiece(int b) {
    return String.format("<0x%02X>", b);
  }

  /** Token ids of {@code text}: {@code spm_encode}'s for {@code text.getBytes(UTF_8)}. */
  int[] encode(String text) {
    if (text.isEmpty()) {
      return new int[0];
    }
    int n = text.codePointCount(0, text.length()) + 1;
    int[] cps = new int[n]; // code point of each initial symbol, for byte fallback
    cps[0] = SPACE_SYMBOL;
    int s = 1;
    for (int i = 0; i < text.length(); s++) {
      int cp = text.codePointAt(i);
      i += Character.charCount(cp);
      if (cp == ' ') {
        cp = SPACE_SYMBOL;
      } else if (cp < 0x10000 && Character.isSurrogate((char) cp)) {
        // A lone surrogate has no UTF-8 form; String.getBytes(UTF_8), and so DJL's JNI call,
        // sends '?' for it.
        cp = '?';
      }
      cps[s] = cp;
    }
    Output out = new Output(n + 8);
    if (!wordsAreIndependent) {
      new Segment(cps, 0, n).encodeInto(out);
      return out.toArray();
    }
    // Cut before each '▁' that follows another character: no piece spans such a cut, so the
    // words are encoded independently (and short ones looked up in a per-thread cache).
    Map<String, int[]> cache = wordCache.get();
    if (cache.size() > CACHE_ENTRIES) {
      cache.clear();
    }
    int from = 0;
    for (int i = 1; i <= n; i++) {
      if (i == n || (cps[i] == SPACE_SYMBOL && cps[i - 1] != SPACE_SYMBOL)) {
        if (i - from <= CACHED_WORD_LENGTH) {
          String word = new String(cps, from, i - from);
          int[] ids = cache.get(word);
          if (ids == null) {
            Output one = new Output(i - from + 4);
            new Segment(cps, from, i).encodeInto(one);
            ids = one.toArray();
            cache.put(word, ids);
          }
          out.addAll(ids);
        } else {
          new Segment(cps, from, i).encodeInto(out);
        }
        from = i;
      }
    }
    return out.toArray();
  }

  private static final int CACHED_WORD_LENGTH = 32;
  private static final int CACHE_ENTRIES = 1 << 16;
  // Per model and thread: no locking on the hot path (a Spark executor has a few long-lived task
  // threads); never static, words map to different ids in another model.
  private final ThreadLocal<Map<String, int[]>> wordCache =
      ThreadLocal.withInitial(() -> new HashMap<>(1 << 12));

  /** A growable int array. */
  private static final class Output {
    int[] ids;
    int size;

    Output(int capacity) {
      ids = new int[capacity];
    }

    void add(int id) {
      if (size == ids.length) {
        ids = Arrays.copyOf(ids, size * 2 + 8);
      }
      ids[size++] = id;
    }

    void addAll(int[] more) {
      if (size + more.length > ids.length) {
        ids = Arrays.copyOf(ids, Math.max(size * 2, size + more.length) + 8);
      }
      System.arraycopy(more, 0, ids, size, more.length);
      size += more.length;
    }

    int[] toArray() {
      return Arrays.copyOf(ids, size);
    }
  }

  /** The BPE merge loop over the symbols {@code [from, to)} of one line. */
  private final class Segment {
    private final int[] cps;
    private final int from;
    private final int[] key;
    private final int[] next;
    private final int[] prev;

    Segment(int[] cps, int from, int to) {
      this.cps = cps;
      this.from = from;
      int n = to - from;
      key = new int[n];
      next = new int[n];
      prev = new int[n];
      for (int i = 0; i < n; i++) {
        key[i] = key(cps[from + i]);
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
      }
    }

    void encodeInto(Output out) {
      int n = key.length;
      LongHeap agenda = new LongHeap(n);
      for (int i = 0; i + 1 < n; i++) {
        offer(agenda, key, i, i + 1);
      }
      while (!agenda.isEmpty()) {
        long top = agenda.poll();
        int left = (int) (0xFFFFFFFFL - (top & 0xFFFFFFFFL));
        int right = next[left];
        // Entries go stale when a neighbour merged; re-derive the pair now at `left` and act
        // only if it has the popped score. An equal-score pair now at `left` has its own entry
        // with the same priority, so acting on it here is what the library would do next anyway.
        if (key[left] == NO_KEY || right < 0) {
          continue;
        }
        int merged = pair(key[left], key[right]);
        if (merged < 0 || sortable(scores[merged]) != (int) (top >> 32)) {
          continue;
        }
        key[left] = merged;
        key[right] = NO_KEY;
        next[left] = next[right];
        if (next[right] >= 0) {
          prev[next[right]] = left;
        }
        if (prev[left] >= 0) {
          offer(agenda, key, prev[left], left);
        }
        if (next[left] >= 0) {
          offer(agenda, key, left, next[left]);
        }
      }
      for (int i = 0; i >= 0; i = next[i]) {
        int k = key[i];
        if (k >= 0 && k < vocabSize) {
          out.add(k);
        } else {
          // Not a piece: always a single character here (merges only yield pieces).
          int cp = cps[from + i];
          byte[] utf8 = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
          for (byte b : utf8) {
            out.add(byteIds[b & 0xff]);
          }
        }
      }
    }
  }

  private void offer(LongHeap agenda, int[] key, int left, int right) {
    if (key[left] == NO_KEY || key[right] == NO_KEY) {
      return;
    }
    int merged = pair(key[left], key[right]);
    if (merged >= 0) {
      // Higher score first, then the leftmost pair: score in the high half, ~left in the low.
      agenda.add(((long) sortable(scores[merged]) << 32) | (0xFFFFFFFFL - left));
    }
  }

  /** Maps a float to an int with the same order under signed comparison. */
  private static int sortable(float f) {
    int bits = Float.floatToIntBits(f);
    return bits ^ ((bits >> 31) & 0x7fffffff);
  }

  private int symbolKey(SentencePieceModel model, String s) {
    int id = model.id(s);
    if (id >= 0) {
      return id;
    }
    return s.codePointCount(0, s.length()) == 1 ? key(s.codePointAt(0)) : NO_KEY;
  }

  private int key(int cp) {
    if (cp < 0x10000) {
      return bmpKey[cp];
    }
    return astralKey.getOrDefault(cp, NO_KEY);
  }

  private void setKey(int cp, int k) {
    if (cp < 0x10000) {
      bmpKey[cp] = k;
    } else {
      astralKey.put(cp, k);
    }
  }

  private static int slot(long k) {
    long h = k * 0x9E3779B97F4A7C15L;
    return (int) (h ^ (h >>> 32));
  }

  private void putPair(int left, int right, int id) {
    long k = ((long) left << 32) | (right & 0xFFFFFFFFL);
    int i = slot(k) & pairMask;
    while (pairKeys[i] != EMPTY && pairKeys[i] != k) {
      i = (i + 1) & pairMask;
    }
    pairKeys[i] = k;
    pairValues[i] = id;
  }

  private int pair(int left, int right) {
    long k = ((long) left << 32) | (right & 0xFFFFFFFFL);
    int i = slot(k) & pairMask;
    while (true) {
      long at = pairKeys[i];
      if (at == k) {
        return pairValues[i];
      }
      if (at == EMPTY) {
        return -1;
      }
      i = (i + 1) & pairMask;
    }
  }

  /** A max-heap of longs, the merge agenda. */
  private static final class LongHeap {
    private long[] heap;
    private int size;

    LongHeap(int capacity) {
      heap = new long[Math.max(16, capacity)];
    }

    boolean isEmpty() {
      return size == 0;
    }

    void add(long v) {
      if (size == heap.length) {
        heap = Arrays.copyOf(heap, size * 2);
      }
      int i = size++;
      while (i > 0) {
        int parent = (i - 1) >>> 1;
        if (heap[parent] >= v) {
          break;
        }
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = v;
    }

    long poll() {
      long top = heap[0];
      long last = heap[--size];
      int i = 0;
      int half = size >>> 1;
      while (i < half) {
        int child = 2 * i + 1;
        if (child + 1 < size && heap[child + 1] > heap[child]) {
          child++;
        }
        if (heap[child] <= last) {
          break;
        }
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
      return top;
    }
  }
}
