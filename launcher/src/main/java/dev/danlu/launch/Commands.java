package dev.danlu.launch;

/** The table of subcommands; each module's CLI class is wired in here. */
final class Commands {
  private static boolean registered;

  private Commands() {}

  static synchronized void registerAll() {
    if (registered) {
      return;
    }
    registered = true;
    Main.register(
        "version",
        "print the danlu version",
        args -> {
          String v = Main.class.getPackage().getImplementationVersion();
          System.out.println("danlu " + (v == null ? "dev" : v));
          return 0;
        });
    Main.register(
        "tokenize",
        "stdin lines to token ids like spm_encode (--tokenizer M [--bos] [--eos] [--pieces] [--decode])",
        dev.danlu.data.tokenizer.TokenizeCli::run);
    Main.register(
        "prep",
        "corpus -> tokenized Arrow shards on Spark, incremental (danlu prep --help)",
        dev.danlu.jobs.prep.PrepCli::run);
    Main.register(
        "train",
        "train on Spark: one barrier task per rank (danlu train --config conf/x.yaml [key=value ...])",
        dev.danlu.launch.TrainCommand::run);
    Main.register(
        "train-local",
        "train with N local worker processes joined by the TCP ring, like torchrun (--config Y --nproc N)",
        dev.danlu.train.cli.TrainLocalCli::run);
    Main.register(
        "worker",
        "one training rank (started by train-local; reads DANLU_* rendezvous variables)",
        dev.danlu.train.cli.WorkerCli::run);
    Main.register(
        "generate",
        "generate text with a LLaMA model (+ PEFT adapter)",
        dev.danlu.train.cli.GenerateCli::run);
    Main.register(
        "merge",
        "merge a PEFT LoRA adapter into its base model (Hugging Face safetensors out)",
        dev.danlu.train.checkpoint.MergeCli::run);
    Main.register(
        "demo",
        "the whole pipeline on a built-in small corpus and tiny model, Spark local mode",
        dev.danlu.launch.DemoCommand::run);
  }
}
