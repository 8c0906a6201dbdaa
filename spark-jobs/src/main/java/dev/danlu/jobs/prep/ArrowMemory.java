package dev.danlu.jobs.prep;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/** The one Arrow root allocator of an executor (or driver) JVM; tasks take child allocators. */
final class ArrowMemory {
  private static final BufferAllocator ROOT = new RootAllocator();

  private ArrowMemory() {}

  static BufferAllocator child(String name) {
    return ROOT.newChildAllocator(name, 0, Long.MAX_VALUE);
  }
}
