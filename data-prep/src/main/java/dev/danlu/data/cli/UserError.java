package dev.danlu.data.cli;

/**
 * Marks an exception whose message tells the user what they got wrong and how to fix it (a bad
 * config, a file that lies about its contents, a run that cannot start). {@link CliSupport} prints
 * such a failure as one line, {@code danlu <subcommand>: <message>}, with exit code 1 and no stack
 * trace unless {@code --verbose}. {@link java.io.IOException} and {@link IllegalArgumentException}
 * are treated the same way without the marker.
 */
public interface UserError {}
