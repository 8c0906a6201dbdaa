package dev.danlu.launch.progress;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;

/** The Training tab's content as HTML (with an SVG loss curve) and as JSON. */
final class TrainingPageHtml {
  private static final ObjectMapper JSON = new ObjectMapper();

  private TrainingPageHtml() {}

  static String json(ProgressBoard board) {
    try {
      return JSON.writeValueAsString(tree(board));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  static ObjectNode tree(ProgressBoard board) {
    ProgressBoard.Summary s = board.summary();
    ObjectNode root = JSON.createObjectNode();
    root.put("attempt", s.attempt());
    root.put("worldSize", s.worldSize());
    root.put("ranksReporting", s.ranksReporting());
    root.put("step", s.step());
    root.put("maxSteps", s.maxSteps());
    number(root, "loss", s.loss());
    number(root, "tokensPerSec", s.tokensPerSec());
    number(root, "etaSeconds", s.etaSeconds());
    root.put("line", s.line());
    ArrayNode ranks = root.putArray("ranks");
    long now = System.currentTimeMillis();
    for (RankProgress p : board.ranks()) {
      ObjectNode r = ranks.addObject();
      r.put("rank", p.rank());
      r.put("step", p.step());
      number(r, "loss", p.loss());
      number(r, "tokensPerSec", p.tokensPerSec());
      number(r, "stepSeconds", p.stepSeconds());
      r.put("secondsSinceReport", (now - p.receivedAtMillis()) / 1000.0);
    }
    ArrayNode curve = root.putArray("lossCurve");
    for (ProgressBoard.LossPoint lp : board.lossCurve()) {
      curve.addArray().add(lp.step()).add(lp.loss()); // the curve holds reported losses only
    }
    return root;
  }

  /** NaN ("not known yet") becomes JSON null: NaN is not JSON, browsers and json4s reject it. */
  private static void number(ObjectNode node, String key, double v) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      node.putNull(key);
    } else {
      node.put(key, v);
    }
  }

  static String render(ProgressBoard board) {
    ProgressBoard.Summary s = board.summary();
    StringBuilder h = new StringBuilder();
    h.append("<script>setTimeout(function(){location.reload();}, 5000);</script>");
    h.append("<h4>").append(escape(s.line())).append("</h4>");
    h.append("<table class=\"table table-bordered table-sm\"><thead><tr>")
        .append("<th>Rank</th><th>Step</th><th>Loss</th><th>Tokens/s</th>")
        .append("<th>Step time (s)</th><th>Last report (s ago)</th></tr></thead><tbody>");
    long now = System.currentTimeMillis();
    for (RankProgress p : board.ranks()) {
      boolean slow = p.rank() == s.slowestRank() && s.ranksReporting() > 1;
      h.append(slow ? "<tr class=\"table-warning\">" : "<tr>")
          .append(cell(Integer.toString(p.rank())))
          .append(cell(Long.toString(p.step())))
          .append(cell(fmt("%.4f", p.loss())))
          .append(cell(fmt("%.0f", p.tokensPerSec())))
          .append(cell(fmt("%.3f", p.stepSeconds())))
          .append(cell(fmt("%.1f", (now - p.receivedAtMillis()) / 1000.0)))
          .append("</tr>");
    }
    h.append("</tbody></table>");
    h.append("<h4>Loss</h4>").append(svg(board.lossCurve()));
    return h.toString();
  }

  private static String svg(List<ProgressBoard.LossPoint> curve) {
    int w = 800;
    int ht = 240;
    if (curve.size() < 2) {
      return "<p>(the curve appears after two reported steps)</p>";
    }
    long s0 = curve.get(0).step();
    long s1 = curve.get(curve.size() - 1).step();
    double lo = Double.MAX_VALUE;
    double hi = -Double.MAX_VALUE;
    for (ProgressBoard.LossPoint p : curve) {
      lo = Math.min(lo, p.loss());
      hi = Math.max(hi, p.loss());
    }
    double span = hi > lo ? hi - lo : 1;
    StringBuilder pts = new StringBuilder();
    for (ProgressBoard.LossPoint p : curve) {
      double x = 40 + (w - 50) * (double) (p.step() - s0) / Math.max(1, s1 - s0);
      double y = 10 + (ht - 30) * (1 - (p.loss() - lo) / span);
      pts.append(fmt("%.1f,%.1f ", x, y));
    }
    return "<svg width=\""
        + w
        + "\" height=\""
        + ht
        + "\" style=\"border:1px solid #ccc\">"
        + "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\""
        + pts
        + "\"/>"
        + text(2, 14, fmt("%.3f", hi))
        + text(2, ht - 20, fmt("%.3f", lo))
        + text(40, ht - 4, "step " + s0)
        + text(w - 90, ht - 4, "step " + s1)
        + "</svg>";
  }

  private static String text(int x, int y, String t) {
    return "<text x=\"" + x + "\" y=\"" + y + "\" font-size=\"11\">" + escape(t) + "</text>";
  }

  private static String cell(String s) {
    return "<td>" + escape(s) + "</td>";
  }

  private static String fmt(String f, Object... args) {
    return String.format(Locale.ROOT, f, args);
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
