package dev.danlu.data.shard;

import dev.danlu.data.cli.UserError;

/** A shard that is not what the reader expects; the message names the file and both values. */
public final class ShardFormatException extends RuntimeException implements UserError {
  private static final long serialVersionUID = 1L;

  public ShardFormatException(String message) {
    super(message);
  }
}
