package dev.danlu.train.checkpoint;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.danlu.train.zero.FlatParams;
import dev.danlu.train.zero.OptimizerState;
import dev.danlu.train.zero.ShardInfo;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The on-disk layout of a training checkpoint, {@code <output_dir>/checkpoint-<step>/}:
 *
 * <pre>
 *   adapter_config.json, adapter_model.safetensors    PEFT adapter (rank 0)
 *   trainer_state.json                                {@link TrainerState} (rank 0)
 *   optimizer/rank-00001-of-00002.safetensors         each rank's ZeRO partition, as
 *                                                     per-parameter slices (any world size reads)
 *   COMMITTED                                         written last, after every file is fsynced
 * </pre>
 *
 * A directory without {@code COMMITTED} is an interrupted save: resume ignores and deletes it.
 * Optimizer slices are named {@code <parameter>@<start>/<kind>}, 1-D, so a reader on another world
 * size reads only the element ranges that overlap its own partition (see docs/checkpoints.md).
 */
public final class TrainingCheckpoint {
  public static final String PREFIX = "checkpoint-";
  public static final String MARKER = "COMMITTED";
  public static final String STATE = "trainer_state.json";
  public static final String OPTIMIZER_DIR = "optimizer";

  private static final Pattern DIR = Pattern.compile("checkpoint-(\\d+)");
  private static final Pattern SLICE = Pattern.compile("(.+)@(\\d+)/(master|exp_avg|exp_avg_sq)");
  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  private TrainingCheckpoint() {}

  public static Path dirFor(Path outputDir, long step) {
    return outputDir.resolve(PREFIX + step);
  }

  public static boolean isCommitted(Path dir) {
    return Files.isRegularFile(dir.resolve(MARKER));
  }

  /** Every {@code checkpoint-<step>} directory, committed or not, by increasing step. */
  public static List<Path> list(Path outputDir) throws IOException {
    if (!Files.isDirectory(outputDir)) {
      return List.of();
    }
    List<Path> out = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(outputDir)) {
      for (Path p : ds) {
        if (Files.isDirectory(p) && DIR.matcher(p.getFileName().toString()).matches()) {
          out.add(p);
        }
      }
    }
    out.sort(Comparator.comparingLong(TrainingCheckpoint::stepOf));
    return out;
  }

  public static long stepOf(Path dir) {
    Matcher m = DIR.matcher(dir.getFileName().toString());
    if (!m.matches()) {
      throw new IllegalArgumentException(dir + " is not a checkpoint-<step> directory");
    }
    return Long.parseLong(m.group(1));
  }

  /** The newest committed checkpoint under {@code outputDir}, if any. */
  public static Optional<Path> newestCommitted(Path outputDir) throws IOException {
    List<Path> all = list(outputDir);
    for (int i = all.size() - 1; i >= 0; i--) {
      if (isCommitted(all.get(i))) {
        return Optional.of(all.get(i));
      }
    }
    return Optional.empty();
  }

  /** Deletes every checkpoint directory without a commit marker; returns what it deleted. */
  public static List<Path> deleteUncommitted(Path outputDir) throws IOException {
    List<Path> gone = new ArrayList<>();
    for (Path p : list(outputDir)) {
      if (!isCommitted(p)) {
        deleteTree(p);
        gone.add(p);
      }
    }
    return gone;
  }

  /**
   * Keeps the newest {@code limit} committed checkpoints and deletes older committed ones (never an
   * uncommitted one: it may be the save in progress). {@code limit <= 0} keeps everything.
   */
  public static List<Path> retain(Path outputDir, int limit) throws IOException {
    return retain(outputDir, limit, 0);
  }

  /**
   * As {@link #retain(Path, int)}, never deleting {@code checkpoint-<keepStep>} (the best model's,
   * as Hugging Face's rotation keeps best_model_checkpoint) nor the newest one; with both kept, at
   * least two remain.
   */
  public static List<Path> retain(Path outputDir, int limit, long keepStep) throws IOException {
    if (limit <= 0) {
      return List.of();
    }
    List<Path> committed =
        list(outputDir).stream().filter(TrainingCheckpoint::isCommitted).toList();
    Path keep = keepStep > 0 ? dirFor(outputDir, keepStep) : null;
    int excess = committed.size() - limit;
    List<Path> gone = new ArrayList<>();
    for (int i = 0; i < committed.size() - 1 && gone.size() < excess; i++) {
      if (committed.get(i).equals(keep)) {
        continue;
      }
      // The marker goes first, so a crash mid-delete leaves an uncommitted (ignored) directory.
      Files.deleteIfExists(committed.get(i).resolve(MARKER));
      deleteTree(committed.get(i));
      gone.add(committed.get(i));
    }
    return gone;
  }

  public static String optimizerFileName(int rank, int worldSize) {
    return String.format(
        Locale.ROOT, "%s/rank-%05d-of-%05d.safetensors", OPTIMIZER_DIR, rank, worldSize);
  }

  /** Writes one rank's optimizer partition (fsynced by the writer). */
  public static void writeOptimizerState(Path dir, int rank, int worldSize, OptimizerState st)
      throws IOException {
    Path file = dir.resolve(optimizerFileName(rank, worldSize));
    Files.createDirectories(file.getParent());
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    for (OptimizerState.Slice s : st.slices()) {
      String base = s.name() + "@" + s.start() + "/";
      tensors.put(base + "master", FloatTensor.of(s.master(), s.master().length));
      tensors.put(base + "exp_avg", FloatTensor.of(s.expAvg(), s.expAvg().length));
      tensors.put(base + "exp_avg_sq", FloatTensor.of(s.expAvgSq(), s.expAvgSq().length));
    }
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", "danlu-zero2-optimizer");
    meta.put("applied_steps", Long.toString(st.appliedSteps()));
    meta.put("loss_scaler", joinDoubles(st.lossScaler()));
    meta.put("rank", Integer.toString(rank));
    meta.put("world_size", Integer.toString(worldSize));
    SafeTensorsWriter.write(file, tensors, DType.F32, meta);
  }

  /**
   * Reads, from every rank file of {@code dir} (whatever world size wrote them), only the element
   * ranges that overlap {@code shard} of {@code flat}: what {@link
   * dev.danlu.train.zero.Zero2Optimizer#importState} needs on this rank, without holding other
   * ranks' partitions in memory.
   */
  public static List<OptimizerState> readOptimizerState(Path dir, FlatParams flat, ShardInfo shard)
      throws IOException {
    Map<String, FlatParams.Slot> slots = new LinkedHashMap<>();
    for (FlatParams.Slot s : flat.slots()) {
      slots.put(s.name(), s);
    }
    List<Path> files;
    Path optDir = dir.resolve(OPTIMIZER_DIR);
    try (Stream<Path> st = Files.list(optDir)) {
      files = st.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
    } catch (java.nio.file.NoSuchFileException e) {
      throw new IOException(
          dir + ": no " + OPTIMIZER_DIR + "/ directory; not a training checkpoint");
    }
    int expectWorld = -1;
    List<OptimizerState> out = new ArrayList<>();
    for (Path f : files) {
      try (SafeTensors in = SafeTensors.open(f)) {
        Map<String, String> md = in.metadata();
        int world = Integer.parseInt(md.getOrDefault("world_size", "-1"));
        if (expectWorld >= 0 && world != expectWorld) {
          throw new IOException(
              dir + ": optimizer files from world sizes " + expectWorld + " and " + world);
        }
        expectWorld = world;
        List<OptimizerState.Slice> slices = new ArrayList<>();
        for (String name : in.names()) {
          Matcher m = SLICE.matcher(name);
          if (!m.matches()) {
            throw new IOException(f + ": unexpected tensor '" + name + "'");
          }
          if (!m.group(3).equals("master")) {
            continue;
          }
          String param = m.group(1);
          int start = Integer.parseInt(m.group(2));
          int len = (int) in.info(name).numel();
          FlatParams.Slot slot = slots.get(param);
          if (slot == null) {
            throw new IOException(
                f
                    + ": optimizer state for '"
                    + param
                    + "', which this run does not train (different target_modules or"
                    + " modules_to_save)");
          }
          int g0 = slot.offset() + start;
          int lo = Math.max(g0, shard.offset());
          int hi = Math.min(g0 + len, shard.end());
          if (lo >= hi) {
            continue;
          }
          int n = hi - lo;
          String base = param + "@" + start + "/";
          float[][] parts = new float[3][n];
          String[] kinds = {"master", "exp_avg", "exp_avg_sq"};
          for (int k = 0; k < 3; k++) {
            in.readFloats(base + kinds[k], lo - g0, parts[k], 0, n);
          }
          slices.add(
              new OptimizerState.Slice(param, lo - slot.offset(), parts[0], parts[1], parts[2]));
        }
        out.add(
            new OptimizerState(
                Long.parseLong(md.get("applied_steps")),
                splitDoubles(md.get("loss_scaler")),
                slices));
      } catch (IOException e) {
        throw e;
      } catch (RuntimeException e) {
        throw new IOException(f + ": " + e.getMessage(), e);
      }
    }
    if (expectWorld > 0 && files.size() != expectWorld) {
      throw new IOException(
          dir
              + ": "
              + files.size()
              + " optimizer rank files for a world size of "
              + expectWorld
              + "; the checkpoint is incomplete");
    }
    return out;
  }

  public static void writeState(Path dir, TrainerState st) throws IOException {
    AtomicFiles.writeJson(JSON, dir.resolve(STATE), st);
  }

  public static TrainerState readState(Path dir) throws IOException {
    Path f = dir.resolve(STATE);
    try {
      return JSON.readValue(f.toFile(), TrainerState.class);
    } catch (IOException e) {
      throw new IOException(f + ": not a readable trainer state: " + e.getMessage(), e);
    }
  }

  /**
   * Makes {@code dir} a committed checkpoint: fsyncs every file below it and the directories, then
   * writes the marker and fsyncs it. Call once every rank's files are written (after a barrier).
   */
  public static void commit(Path dir) throws IOException {
    List<Path> all;
    try (Stream<Path> st = Files.walk(dir)) {
      all = st.toList();
    }
    for (Path p : all) {
      fsync(p);
    }
    Path marker = dir.resolve(MARKER);
    Files.writeString(marker, "step " + stepOf(dir) + "\n", StandardCharsets.UTF_8);
    fsync(marker);
    fsync(dir);
    fsync(dir.getParent());
  }

  private static void fsync(Path p) throws IOException {
    if (Files.isDirectory(p)) {
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
        ch.force(true);
      } catch (IOException e) {
        // Some file systems cannot open directories for fsync; the file fsyncs still hold.
      }
      return;
    }
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    List<Path> all;
    try (Stream<Path> st = Files.walk(root)) {
      all = new ArrayList<>(st.toList());
    }
    all.sort(Comparator.comparingInt(Path::getNameCount).reversed());
    for (Path p : all) {
      Files.deleteIfExists(p);
    }
  }

  private static String joinDoubles(double[] v) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < v.length; i++) {
      sb.append(i == 0 ? "" : ",").append(v[i]);
    }
    return sb.toString();
  }

  private static double[] splitDoubles(String s) {
    return Arrays.stream(s.split(",")).mapToDouble(Double::parseDouble).toArray();
  }
}
