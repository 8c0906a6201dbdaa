package dev.danlu.jobs.prep;

import dev.danlu.data.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.StandardCopyOption;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The tokenizer as the driver sees it, loaded (and so validated) before any Spark work. A remote
 * tokenizer (hdfs://, s3a://) is first copied to a local file. The file to ship to executors is
 * named after its sha256, so two different tokenizers never collide in {@code SparkFiles}.
 *
 * @param padId the tokenizer's pad id, -1 if it has none
 * @param shipFile local copy named {@code <sha256 prefix>-<name>}, given to {@code addFile}
 */
record TokenizerInfo(
    String source,
    java.nio.file.Path shipFile,
    String sha256,
    int vocabSize,
    int bosId,
    int eosId,
    int padId) {

  static TokenizerInfo load(String path, Configuration conf) throws IOException {
    Path hp = new Path(path);
    java.nio.file.Path local;
    String scheme = hp.toUri().getScheme();
    if (scheme == null || scheme.equals("file")) {
      local = java.nio.file.Path.of(hp.toUri().getPath());
      if (!Files.exists(local)) {
        throw new NoSuchFileException(
            path,
            null,
            "tokenizer does not exist (--tokenizer needs a tokenizer.model or tokenizer.json)");
      }
    } else {
      FileSystem fs = hp.getFileSystem(conf);
      if (!fs.exists(hp)) {
        throw new NoSuchFileException(path, null, "tokenizer does not exist");
      }
      local = Files.createTempFile("danlu-tokenizer-", "-" + hp.getName());
      try (InputStream in = fs.open(hp)) {
        Files.copy(in, local, StandardCopyOption.REPLACE_EXISTING);
      }
    }
    try (TextTokenizer t = TextTokenizer.load(local)) {
      java.nio.file.Path dir =
          java.nio.file.Path.of(System.getProperty("java.io.tmpdir"), "danlu-tokenizers");
      Files.createDirectories(dir);
      java.nio.file.Path ship =
          dir.resolve(t.sha256().substring(0, 16) + "-" + local.getFileName());
      if (!Files.exists(ship)) {
        java.nio.file.Path tmp = Files.createTempFile(dir, ".ship-", ".tmp");
        Files.copy(local, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp, ship, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      }
      return new TokenizerInfo(
          path, ship, t.sha256(), t.vocabSize(), t.bosId(), t.eosId(), t.padId());
    }
  }

  String fileName() {
    java.nio.file.Path n = java.nio.file.Path.of(new Path(source).getName());
    return n.toString();
  }
}
