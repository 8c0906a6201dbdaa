package dev.danlu.launch;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Spark standalone cluster on 127.0.0.1 for tests: a Master and N Workers, each a separate
 * JVM started from this test's classpath (no Spark distribution needed). Every process is destroyed
 * by {@link #close}, executors (the Workers' children) included.
 */
final class StandaloneCluster implements AutoCloseable {
  private static final Pattern MASTER_URL = Pattern.compile("(spark://127\\.0\\.0\\.1:\\d+)");

  final String masterUrl;
  private final Path dir;
  private final Path logs;
  private final Process master;
  private final List<Process> workers = new ArrayList<>();

  /**
   * @param fakeGpuBin a directory with a fake {@code nvidia-smi}, or null: each Worker then owns
   *     one GPU (Worker i gets index i) found through conf/gpu-discovery.sh
   */
  StandaloneCluster(Path dir, int workers, int coresPerWorker, Path fakeGpuBin) throws Exception {
    this.dir = dir;
    this.logs = Files.createDirectories(dir.resolve("logs"));
    Process m = null;
    try {
      m =
          start(
              "master",
              List.of(),
              Map.of(),
              "org.apache.spark.deploy.master.Master",
              "--host",
              "127.0.0.1",
              "--port",
              "0",
              "--webui-port",
              "0");
      this.master = m;
      this.masterUrl = awaitLog("master", MASTER_URL, 60);
      for (int i = 0; i < workers; i++) {
        Path work = Files.createDirectories(dir.resolve("worker-" + i));
        List<String> jvm = new ArrayList<>();
        Map<String, String> env = new java.util.HashMap<>();
        if (fakeGpuBin != null) {
          jvm.add("-Dspark.worker.resource.gpu.amount=1");
          jvm.add(
              "-Dspark.worker.resource.gpu.discoveryScript="
                  + GpuDiscoveryScriptTest.script().toAbsolutePath());
          env.put("PATH", fakeGpuBin + ":" + System.getenv("PATH"));
          env.put("DANLU_GPU_DISCOVERY_ONLY", Integer.toString(i));
        }
        this.workers.add(
            start(
                "worker-" + i,
                jvm,
                env,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--webui-port",
                "0",
                "--cores",
                Integer.toString(coresPerWorker),
                "--memory",
                "1g",
                "--work-dir",
                work.toString(),
                masterUrl));
      }
      for (int i = 0; i < workers; i++) {
        awaitLog("worker-" + i, Pattern.compile("(Successfully registered with master)"), 60);
      }
    } catch (Exception e) {
      close();
      throw e;
    }
  }

  private Process start(
      String name, List<String> jvm, Map<String, String> extraEnv, String mainClass, String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx256m");
    cmd.addAll(List.of(System.getProperty("danlu.test.opens", "").split(" ")));
    cmd.removeIf(String::isBlank);
    cmd.addAll(jvm);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(mainClass);
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    Map<String, String> env = pb.environment();
    env.put("SPARK_SCALA_VERSION", "2.13");
    env.put("SPARK_TESTING", "1");
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    env.put("SPARK_HOME", logs.getParent().toString());
    env.put("DANLU_SMOKE_STEP_MILLIS", "300");
    env.putAll(extraEnv);
    pb.redirectErrorStream(true);
    pb.redirectOutput(logs.resolve(name + ".log").toFile());
    return pb.start();
  }

  /** Waits for a line matching {@code p} in a process's log and returns group 1. */
  String awaitLog(String name, Pattern p, int seconds) throws Exception {
    Path log = logs.resolve(name + ".log");
    long deadline = System.currentTimeMillis() + seconds * 1000L;
    while (System.currentTimeMillis() < deadline) {
      if (Files.exists(log)) {
        Matcher m = p.matcher(Files.readString(log, StandardCharsets.UTF_8));
        if (m.find()) {
          return m.group(1);
        }
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException(
        name + " did not log " + p + " within " + seconds + "s:\n" + tail(name));
  }

  String tail(String name) {
    try {
      List<String> lines = Files.readAllLines(logs.resolve(name + ".log"));
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** The executor JVMs (CoarseGrainedExecutorBackend) the Workers have started. */
  List<ProcessHandle> executors() {
    List<ProcessHandle> out = new ArrayList<>();
    for (Process w : workers) {
      w.toHandle()
          .descendants()
          .filter(h -> commandLine(h).contains("CoarseGrainedExecutorBackend"))
          .forEach(out::add);
    }
    return out;
  }

  /**
   * The full command line from /proc: ProcessHandle.Info truncates long ones, and an executor's
   * class path is long.
   */
  static String commandLine(ProcessHandle h) {
    try {
      return new String(
              Files.readAllBytes(Path.of("/proc", Long.toString(h.pid()), "cmdline")),
              StandardCharsets.UTF_8)
          .replace('\0', ' ');
    } catch (IOException e) {
      return h.info().commandLine().orElse("");
    }
  }

  /** Every executor's stderr (the Workers keep them in work-dir/app-id/executor-id/stderr). */
  String executorLogs() throws IOException {
    StringBuilder all = new StringBuilder();
    try (var files = Files.walk(dir)) {
      for (Path p : files.filter(f -> f.getFileName().toString().equals("stderr")).toList()) {
        all.append(Files.readString(p, StandardCharsets.UTF_8));
      }
    }
    return all.toString();
  }

  @Override
  public void close() {
    List<ProcessHandle> all = new ArrayList<>();
    for (Process w : workers) {
      w.toHandle().descendants().forEach(all::add);
      all.add(w.toHandle());
    }
    if (master != null) {
      all.add(master.toHandle());
    }
    all.forEach(ProcessHandle::destroyForcibly);
    for (ProcessHandle h : all) {
      try {
        h.onExit().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("process " + h.pid() + " did not exit: " + e);
      }
    }
  }

  static String classPath() {
    return System.getProperty("java.class.path").replace(File.pathSeparatorChar, ':');
  }
}
