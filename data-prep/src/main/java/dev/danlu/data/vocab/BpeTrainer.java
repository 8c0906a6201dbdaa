package dev.danlu.data.vocab;

import dev.danlu.data.cli.UserError;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * SentencePiece's BPE trainer (bpe_model_trainer and trainer_interface of sentencepiece 0.1.97, the
 * Debian {@code spm_train}) over a table of words and their counts, which the Spark job builds.
 *
 * <p>The steps and their rules are spm's: the alphabet is the most frequent characters up to the
 * character coverage, the rest become U+2585 and never join a piece; a merge candidate is a pair of
 * adjacent symbols whose concatenation is a valid piece (at most max_sentencepiece_length
 * characters, U+2581 only in front, one Unicode script, Hiragana/Katakana counted as Han, digits
 * apart when asked); each round takes the most frequent candidate (ties: shorter, then smaller
 * string), among the "active" candidates (the top 5 %, at least 1000, refreshed every 100 pieces,
 * plus every pair created since), replaces its occurrences and updates only the neighbouring pairs'
 * counts. Counts are cached per candidate and recomputed only when a neighbouring merge reset them;
 * overlapping occurrences ("aaa") are counted once; a string reached by two merge paths is taken
 * once. Scores are minus the piece's rank; the alphabet follows the merged pieces.
 *
 * <p>Where spm leaves an order to pointer values or hash tables (equal-count candidates at the 5 %
 * cut, two candidates with the same string and count), this class breaks the tie by creation order.
 * The best candidate is kept in a heap instead of a scan over the active set; both pick the same
 * one.
 */
public final class BpeTrainer {
  /** A model piece in id order. */
  public record Piece(String piece, float score, int type) {}

  /** A failure the user fixes with other options or another corpus. */
  public static final class TrainingError extends IllegalArgumentException implements UserError {
    public TrainingError(String message) {
      super(message);
    }
  }

  /** Counters for the log. */
  public record Stats(
      int words, long characters, int alphabet, double coverage, int merges, int activeUpdates) {}

  private static final int UPDATE_INTERVAL = 100;
  private static final int MIN_ACTIVE = 1000;
  private static final float TOP_RATIO = 0.05f;

  private final BpeSpec spec;
  private Sym[][] symbols; // per word: the symbol at each character index, null once merged away
  private long[] wordFreq;
  private Map<Integer, Integer> required; // alphabet char -> count
  private final Map<Integer, Sym> charCache = new HashMap<>();
  private final Map<Long, Sym> pairCache = new HashMap<>();
  private int nextId;
  private final List<Sym> active = new ArrayList<>();
  private List<Sym> dirty = new ArrayList<>(); // active, count to recompute
  private final PriorityQueue<Entry> heap = new PriorityQueue<>(BpeTrainer::better);
  private Stats stats;

  public BpeTrainer(BpeSpec spec) {
    this.spec = spec;
  }

  public Stats stats() {
    return stats;
  }

  /**
   * Trains on {@code wordCounts} (normalized words, see {@link SpmText}) and returns the model's
   * pieces in id order, exactly {@code spec.vocabSize()} of them.
   *
   * @throws TrainingError if the corpus is empty or cannot fill the vocabulary
   */
  public List<Piece> train(Map<String, Long> wordCounts) {
    List<String> meta = spec.metaPieces();
    if (meta.size() > spec.vocabSize()) {
      throw new TrainingError(
          "--vocab-size " + spec.vocabSize() + " is below the " + meta.size() + " meta pieces");
    }
    if (wordCounts.isEmpty()) {
      throw new TrainingError(
          "the corpus has no text to train on (every line empty, too long or skipped)");
    }
    Alphabet alphabet = alphabet(wordCounts, spec.characterCoverage());
    required = alphabet.counts();
    List<Integer> alphabetOrder = alphabet.order();
    long all = alphabet.all();
    long accumulated = alphabet.covered();
    if (required.size() + meta.size() > spec.vocabSize()) {
      throw new TrainingError(
          "--vocab-size "
              + spec.vocabSize()
              + " is smaller than the alphabet ("
              + required.size()
              + " characters) plus "
              + meta.size()
              + " meta pieces; raise --vocab-size or lower --character-coverage");
    }
    // Rare characters -> U+2585, then the words re-aggregated and sorted as spm sorts them.
    Map<String, Long> replaced = new HashMap<>(wordCounts.size() * 2);
    for (Map.Entry<String, Long> w : wordCounts.entrySet()) {
      replaced.merge(replaceRare(w.getKey()), w.getValue(), Long::sum);
    }
    List<Map.Entry<String, Long>> sorted = new ArrayList<>(replaced.entrySet());
    sorted.sort(
        (a, b) ->
            !a.getValue().equals(b.getValue())
                ? Long.compare(b.getValue(), a.getValue())
                : compareCodePoints(a.getKey(), b.getKey()));
    int n = sorted.size();
    symbols = new Sym[n][];
    wordFreq = new long[n];
    for (int sid = 0; sid < n; sid++) {
      String w = sorted.get(sid).getKey();
      wordFreq[sid] = sorted.get(sid).getValue();
      int[] cps = w.codePoints().toArray();
      Sym[] row = new Sym[cps.length];
      for (int i = 0; i < cps.length; i++) {
        row[i] = charSymbol(cps[i]);
      }
      symbols[sid] = row;
    }
    // the word strings are not needed during the merges
    sorted.clear();
    replaced.clear();
    for (int sid = 0; sid < n; sid++) {
      for (int i = 1; i < symbols[sid].length; i++) {
        addPair(sid, i - 1, i);
      }
    }

    int target = spec.vocabSize() - meta.size() - required.size();
    List<String> finalPieces = new ArrayList<>();
    Set<String> dup = new HashSet<>();
    int updates = 0;
    while (finalPieces.size() < target) {
      if (finalPieces.size() % UPDATE_INTERVAL == 0) {
        updateActive();
        updates++;
      }
      Sym best = selectBest();
      if (best == null) {
        break;
      }
      if (!dup.add(best.str)) {
        erase(best);
        continue;
      }
      finalPieces.add(best.str);
      best.ensureSorted();
      long[] pos = best.pos;
      int np = best.npos;
      for (int k = 0; k < np; k++) {
        long p = pos[k];
        int sid = (int) (p >>> 32);
        int l = (int) ((p >>> 16) & 0xffff);
        int r = (int) (p & 0xffff);
        Sym[] row = symbols[sid];
        if (row[l] == null) {
          continue; // merged away by the previous occurrence ("aaa")
        }
        if (row[r] == null) {
          throw new IllegalStateException("BPE position table corrupt at word " + sid);
        }
        int next = nextIndex(row, r);
        int prev = prevIndex(row, l);
        resetFreq(sid, prev, l, best);
        resetFreq(sid, r, next, best);
        row[l] = best;
        row[r] = null;
        addPair(sid, prev, l);
        addPair(sid, l, next);
      }
      erase(best);
    }
    int merges = finalPieces.size();
    // the alphabet, by count then code point (spm's Sorted(required_chars_))
    for (int c : alphabetOrder) {
      finalPieces.add(new String(Character.toChars(c)));
    }
    if (finalPieces.size() + meta.size() != spec.vocabSize()) {
      throw new TrainingError(
          "--vocab-size "
              + spec.vocabSize()
              + " is larger than this corpus can fill: set it to a value <= "
              + (finalPieces.size() + meta.size()));
    }
    List<Piece> out = new ArrayList<>(spec.vocabSize());
    for (int i = 0; i < meta.size(); i++) {
      int type =
          i == 0
              ? 2
              : i < 3
                  ? 3
                  : i < 3 + spec.userDefinedSymbols().size() ? 4 : 6; // UNK CONTROL USER BYTE
      out.add(new Piece(meta.get(i), 0f, type));
    }
    for (int i = 0; i < finalPieces.size(); i++) {
      out.add(new Piece(finalPieces.get(i), -(float) i, 1));
    }
    stats = new Stats(n, all, required.size(), accumulated / (double) all, merges, updates);
    return out;
  }

  /**
   * The required characters: the most frequent ones (ties by code point) until their share of all
   * character occurrences reaches the coverage, compared in float as spm does.
   *
   * @param order the characters, most frequent first
   * @param counts each character's count
   * @param all character occurrences in the corpus
   * @param covered occurrences of the characters taken
   */
  public record Alphabet(
      List<Integer> order, Map<Integer, Integer> counts, long all, long covered) {}

  /**
   * The alphabet of {@code wordCounts} at {@code coverage} (trainer_interface LoadSentences); its
   * size plus the meta pieces is the smallest vocabulary {@link #train} accepts.
   */
  public static Alphabet alphabet(Map<String, Long> wordCounts, float coverage) {
    Map<Integer, long[]> charCount = new HashMap<>();
    long all = 0;
    for (Map.Entry<String, Long> w : wordCounts.entrySet()) {
      long f = w.getValue();
      String s = w.getKey();
      for (int i = 0; i < s.length(); ) {
        int c = s.codePointAt(i);
        i += Character.charCount(c);
        if (c == 0) {
          continue;
        }
        charCount.computeIfAbsent(c, k -> new long[1])[0] += f;
        all += f;
      }
    }
    List<Map.Entry<Integer, long[]>> chars = new ArrayList<>(charCount.entrySet());
    chars.sort(
        (a, b) ->
            a.getValue()[0] != b.getValue()[0]
                ? Long.compare(b.getValue()[0], a.getValue()[0])
                : Integer.compare(a.getKey(), b.getKey()));
    Map<Integer, Integer> counts = new HashMap<>();
    List<Integer> order = new ArrayList<>();
    long accumulated = 0;
    for (Map.Entry<Integer, long[]> e : chars) {
      float covered = (float) (1.0 * accumulated / all); // spm stores it in a float
      if (covered >= coverage) {
        break;
      }
      accumulated += e.getValue()[0];
      if (e.getKey() == SpmText.BOUNDARY) {
        continue;
      }
      counts.put(e.getKey(), (int) Math.min(Integer.MAX_VALUE, e.getValue()[0]));
      order.add(e.getKey());
    }
    return new Alphabet(order, counts, all, accumulated);
  }

  private String replaceRare(String w) {
    StringBuilder sb = null;
    for (int i = 0; i < w.length(); ) {
      int c = w.codePointAt(i);
      int len = Character.charCount(c);
      if (!required.containsKey(c)) {
        if (sb == null) {
          sb = new StringBuilder(w.length());
          sb.append(w, 0, i);
        }
        sb.appendCodePoint(SpmText.UNK_CHAR);
      } else if (sb != null) {
        sb.appendCodePoint(c);
      }
      i += len;
    }
    return sb == null ? w : sb.toString();
  }

  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int ca = a.codePointAt(i);
      int cb = b.codePointAt(j);
      if (ca != cb) {
        return Integer.compare(ca, cb);
      }
      i += Character.charCount(ca);
      j += Character.charCount(cb);
    }
    return Boolean.compare(i < a.length(), j < b.length());
  }

  // ---- symbols ----

  private static final long[] NO_POS = new long[0];

  private static final class Sym {
    final int id;
    final int[] chars;
    final String str;
    final Sym left;
    final Sym right;
    final boolean unk;
    final long key;
    long freq;
    int stamp;
    boolean active;
    boolean inDirty;
    long[] pos = NO_POS;
    int npos;
    boolean sorted = true;

    Sym(int id, int[] chars, Sym left, Sym right, long key) {
      this.id = id;
      this.chars = chars;
      this.str = new String(chars, 0, chars.length);
      this.left = left;
      this.right = right;
      this.unk = chars.length == 1 && chars[0] == SpmText.UNK_CHAR;
      this.key = key;
    }

    void addPos(long p) {
      if (npos == pos.length) {
        pos = Arrays.copyOf(pos, Math.max(4, npos * 2));
      }
      if (npos > 0 && p <= pos[npos - 1]) {
        sorted = false;
      }
      pos[npos++] = p;
    }

    /** spm keeps positions in an ordered set: sorted, no duplicates. */
    void ensureSorted() {
      if (sorted) {
        return;
      }
      Arrays.sort(pos, 0, npos);
      int w = 0;
      for (int i = 0; i < npos; i++) {
        if (w == 0 || pos[i] != pos[w - 1]) {
          pos[w++] = pos[i];
        }
      }
      npos = w;
      sorted = true;
    }
  }

  private record Entry(Sym sym, long freq, int stamp) {}

  /** Heap order: higher count, then fewer characters, then smaller string, then older. */
  private static int better(Entry a, Entry b) {
    if (a.freq != b.freq) {
      return Long.compare(b.freq, a.freq);
    }
    return betterSameFreq(a.sym, b.sym);
  }

  private static int betterSameFreq(Sym a, Sym b) {
    if (a.chars.length != b.chars.length) {
      return Integer.compare(a.chars.length, b.chars.length);
    }
    int c = Arrays.compare(a.chars, b.chars);
    return c != 0 ? c : Integer.compare(a.id, b.id);
  }

  private Sym charSymbol(int c) {
    Sym s = charCache.get(c);
    if (s == null) {
      s = new Sym(nextId++, new int[] {c}, null, null, c);
      s.freq = required.getOrDefault(c, 1);
      charCache.put(c, s);
    }
    return s;
  }

  private Sym pairSymbol(Sym left, Sym right) {
    if (left == null || right == null || left.unk || right.unk) {
      return null;
    }
    long key = ((long) left.id << 32) | right.id;
    Sym s = pairCache.get(key);
    if (s != null) {
      return s;
    }
    int[] chars = new int[left.chars.length + right.chars.length];
    System.arraycopy(left.chars, 0, chars, 0, left.chars.length);
    System.arraycopy(right.chars, 0, chars, left.chars.length, right.chars.length);
    if (!PieceRules.valid(chars, spec)) {
      return null;
    }
    s = new Sym(nextId++, chars, left, right, key);
    pairCache.put(key, s);
    return s;
  }

  private static long encode(int sid, int l, int r) {
    return ((long) sid << 32) | ((long) l << 16) | r;
  }

  private void addPair(int sid, int l, int r) {
    if (l < 0 || r < 0) {
      return;
    }
    Sym s = pairSymbol(symbols[sid][l], symbols[sid][r]);
    if (s == null) {
      return;
    }
    if (!s.active) {
      s.active = true;
      active.add(s);
      enqueue(s);
    }
    s.addPos(encode(sid, l, r));
  }

  private void resetFreq(int sid, int l, int r, Sym best) {
    if (l < 0 || r < 0) {
      return;
    }
    Sym s = pairSymbol(symbols[sid][l], symbols[sid][r]);
    if (s != null && s != best) {
      s.freq = 0;
      s.stamp++;
      if (s.active) {
        markDirty(s);
      }
    }
  }

  private void markDirty(Sym s) {
    if (!s.inDirty) {
      s.inDirty = true;
      dirty.add(s);
    }
  }

  /** An active symbol: its count to compute, or its cached count into the heap. */
  private void enqueue(Sym s) {
    if (s.freq == 0) {
      markDirty(s);
    } else {
      s.stamp++;
      heap.add(new Entry(s, s.freq, s.stamp));
    }
  }

  /** spm's ComputeFreq, the 0.1.97 version: stale and overlapping positions are dropped. */
  private void computeFreq(Sym s) {
    if (s.freq > 0) {
      return;
    }
    s.ensureSorted();
    long f = 0;
    int prevSid = -1;
    int prevRight = 0;
    int w = 0;
    long[] pos = s.pos;
    for (int i = 0; i < s.npos; i++) {
      long p = pos[i];
      int sid = (int) (p >>> 32);
      int l = (int) ((p >>> 16) & 0xffff);
      int r = (int) (p & 0xffff);
      if ((sid == prevSid && l == prevRight)
          || s.left != symbols[sid][l]
          || s.right != symbols[sid][r]) {
        prevSid = -1;
        prevRight = 0;
      } else {
        f += wordFreq[sid];
        prevSid = sid;
        prevRight = r;
        pos[w++] = p;
      }
    }
    s.npos = w;
    s.freq = f;
  }

  private Sym selectBest() {
    List<Sym> todo = dirty;
    dirty = new ArrayList<>();
    for (Sym s : todo) {
      s.inDirty = false;
    }
    for (Sym s : todo) {
      if (s.active && s.freq == 0) {
        computeFreq(s);
        s.stamp++;
        heap.add(new Entry(s, s.freq, s.stamp));
        if (s.freq == 0) {
          markDirty(s); // spm recomputes a zero count on every scan
        }
      }
    }
    while (!heap.isEmpty()) {
      Entry e = heap.poll();
      if (e.sym.active && e.stamp == e.sym.stamp) {
        return e.sym;
      }
    }
    return null;
  }

  private void erase(Sym best) {
    pairCache.remove(best.key, best);
    best.active = false;
  }

  /** spm's UpdateActiveSymbols: the top max(1000, 5 % of all symbols) candidates by count. */
  private void updateActive() {
    List<Sym> bigrams = new ArrayList<>(pairCache.values());
    long[] freqs = new long[bigrams.size()];
    for (int i = 0; i < freqs.length; i++) {
      Sym s = bigrams.get(i);
      computeFreq(s);
      freqs[i] = s.freq;
    }
    int cacheSize = charCache.size() + pairCache.size();
    int size = Math.min(Math.max(MIN_ACTIVE, (int) (cacheSize * TOP_RATIO)), bigrams.size());
    for (Sym s : active) {
      s.active = false;
    }
    active.clear();
    for (Sym s : dirty) {
      s.inDirty = false;
    }
    dirty.clear();
    heap.clear();
    if (size == 0) {
      return;
    }
    long[] byFreq = freqs.clone();
    Arrays.sort(byFreq);
    long cut = byFreq[byFreq.length - size];
    List<Sym> ties = new ArrayList<>();
    for (int i = 0; i < freqs.length; i++) {
      Sym s = bigrams.get(i);
      if (s.freq > cut) {
        activate(s);
      } else if (s.freq == cut) {
        ties.add(s);
      }
    }
    ties.sort((a, b) -> Integer.compare(a.id, b.id));
    for (int i = 0; active.size() < size; i++) {
      activate(ties.get(i));
    }
  }

  private void activate(Sym s) {
    s.active = true;
    active.add(s);
    s.stamp++;
    heap.add(new Entry(s, s.freq, s.stamp));
    if (s.freq == 0) {
      markDirty(s);
    }
  }

  private static int nextIndex(Sym[] row, int i) {
    for (int j = i + 1; j < row.length; j++) {
      if (row[j] != null) {
        return j;
      }
    }
    return -1;
  }

  private static int prevIndex(Sym[] row, int i) {
    for (int j = i - 1; j >= 0; j--) {
      if (row[j] != null) {
        return j;
      }
    }
    return -1;
  }
}
