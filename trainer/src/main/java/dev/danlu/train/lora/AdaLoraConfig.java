package dev.danlu.train.lora;

/**
 * AdaLoRA's own hyper-parameters (PEFT's AdaLoraConfig beyond LoRA's): each targeted projection
 * starts with {@code initR} singular triplets (its {@link LoraConfig#rank()}), and the rank
 * allocator prunes the total budget from {@code initR × modules} to {@code targetR × modules} along
 * a cubic schedule between step {@code tinit} and {@code totalStep - tfinal}, masking every {@code
 * deltaT} steps; {@code beta1} / {@code beta2} smooth the sensitivity and its uncertainty; {@code
 * orthRegWeight} weighs the orthogonality regulariser on A and B.
 */
public record AdaLoraConfig(
    int initR,
    int targetR,
    int tinit,
    int tfinal,
    int deltaT,
    double beta1,
    double beta2,
    double orthRegWeight,
    int totalStep) {

  public AdaLoraConfig {
    if (initR <= 0 || targetR <= 0 || targetR > initR) {
      throw new IllegalArgumentException(
          "AdaLoRA needs 0 < target_r <= init_r, got target_r " + targetR + ", init_r " + initR);
    }
    if (totalStep <= tinit + tfinal) {
      throw new IllegalArgumentException(
          "AdaLoRA's total_step ("
              + totalStep
              + ") must exceed tinit + tfinal ("
              + (tinit + tfinal)
              + ")");
    }
    if (deltaT <= 0 || !(beta1 > 0 && beta1 < 1) || !(beta2 > 0 && beta2 < 1)) {
      throw new IllegalArgumentException("AdaLoRA needs deltaT >= 1 and beta1, beta2 in (0, 1)");
    }
    if (!(orthRegWeight > 0)) {
      throw new IllegalArgumentException("orth_reg_weight must be > 0, got " + orthRegWeight);
    }
  }
}
