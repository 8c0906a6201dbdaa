package dev.danlu.launch;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Spark History Server for tests: {@code org.apache.spark.deploy.history.HistoryServer} in a
 * child JVM on this test's class path (so danlu's {@code TrainingHistoryPlugin} is found through
 * {@code META-INF/services}, as with danlu's jar on a History Server's class path), bound to
 * 127.0.0.1 on a free port, reading the event logs of {@code logDir}. {@link #close} stops it.
 */
final class HistoryServerProcess implements AutoCloseable {
  final String url;
  private final Process process;
  private final Path log;

  HistoryServerProcess(Path logDir, Path work) throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path props = work.resolve("history.conf");
    Files.writeString(
        props,
        String.join(
            "\n",
            "spark.history.fs.logDirectory=" + logDir.toUri(),
            "spark.history.ui.port=" + port,
            "spark.history.fs.update.interval=1s",
            ""));
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx384m");
    cmd.addAll(List.of(System.getProperty("danlu.test.opens", "").split(" ")));
    cmd.removeIf(String::isBlank);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("org.apache.spark.deploy.history.HistoryServer");
    cmd.add("--properties-file");
    cmd.add(props.toString());
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.environment().put("SPARK_SCALA_VERSION", "2.13");
    pb.environment().put("SPARK_TESTING", "1");
    log = work.resolve("history-server.log");
    pb.redirectErrorStream(true);
    pb.redirectOutput(log.toFile());
    process = pb.start();
    url = "http://127.0.0.1:" + port;
  }

  /** Waits until the History Server lists {@code appId}; returns its UI's Training page URL. */
  String awaitApp(String appId, int seconds) throws Exception {
    long deadline = System.currentTimeMillis() + seconds * 1000L;
    String last = "";
    while (System.currentTimeMillis() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("history server exited:\n" + tail());
      }
      try {
        last = LiveProgressTest.get(url + "/api/v1/applications");
        if (last.contains(appId)) {
          return url + "/history/" + appId + "/training/";
        }
      } catch (Exception | AssertionError e) {
        last = e.toString();
      }
      Thread.sleep(300);
    }
    throw new IllegalStateException(
        "history server did not list " + appId + " in " + seconds + "s: " + last + "\n" + tail());
  }

  String tail() {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return "(no log)";
    }
  }

  @Override
  public void close() throws InterruptedException {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    process.waitFor(20, TimeUnit.SECONDS);
  }
}
