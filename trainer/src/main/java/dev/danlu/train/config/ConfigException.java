package dev.danlu.train.config;

import dev.danlu.data.cli.UserError;

/**
 * A configuration the run cannot start with; the message names the file, line or key and the fix.
 */
public final class ConfigException extends RuntimeException implements UserError {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }
}
