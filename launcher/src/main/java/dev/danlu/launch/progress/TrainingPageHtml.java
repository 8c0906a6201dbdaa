package dev.danlu.launch.progress;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Training tab's content: summary, data age, per-rank table, charts (training loss with its EMA
 * and the evaluations, learning rate, gradient norm with the overflow skips, tokens/s, loss scale
 * under fp16) on one step axis with checkpoints and attempts marked, and the event list; and the
 * same as JSON. Everything inline (SVG and a little script, no external assets): the Spark UI is
 * often reached through a proxy on a cluster without internet.
 */
final class TrainingPageHtml {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final int PLOT_WIDTH = 800;
  private static final int LEFT = 64;
  private static final int RIGHT = 16;
  private static final int HEIGHT = 150;
  private static final int TOP = 8;
  private static final int BOTTOM = 22;
  private static final int MAX_EVENT_ROWS = 300;
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'").withZone(ZoneOffset.UTC);

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
    root.put("lastReportMillis", board.lastReportMillis());
    root.put("finished", board.finished());
    root.put("overflows", board.overflows());
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
    ArrayNode events = root.putArray("events");
    for (TrainingEvent e : board.events()) {
      ObjectNode o = events.addObject();
      o.put("kind", e.kind());
      o.put("attempt", e.attempt());
      o.put("step", e.step());
      o.put("timeMillis", e.timeMillis());
      o.put("text", e.text());
      number(o, "value", e.value());
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

  /**
   * The page body.
   *
   * @param live true in the running application (refreshes itself), false in the History Server
   */
  static String render(ProgressBoard board, boolean live) {
    ProgressBoard.Summary s = board.summary();
    List<TrainingEvent> events = board.events();
    StringBuilder h = new StringBuilder(64 * 1024);
    h.append("<div id=\"danlu-training\" data-live=\"").append(live).append("\">");
    h.append("<h4 id=\"danlu-summary\">").append(escape(s.line())).append("</h4>");
    h.append("<p id=\"danlu-age\" data-updated=\"").append(board.lastReportMillis()).append("\">");
    String asOf = board.lastReportMillis() == 0 ? "no report yet" : time(board.lastReportMillis());
    if (live) {
      h.append("Live; data as of ")
          .append(escape(asOf))
          .append(" (<span class=\"danlu-age-s\">")
          .append(fmt("%.0f", (System.currentTimeMillis() - board.lastReportMillis()) / 1000.0))
          .append("</span> s old); the page refreshes every 5 s.");
    } else {
      h.append("From the event log; last report ")
          .append(escape(asOf))
          .append(". ")
          .append(
              board.finished()
                  ? "Training finished."
                  : "The log has no end of training: the run failed, was killed, or is still"
                      + " running.");
    }
    h.append("</p>");
    rankTable(h, board, s);
    board.withCurve(
        curve -> {
          if (curve.size() < 1) {
            h.append("<p>(the charts appear with the first reported step)</p>");
          } else {
            charts(h, ChartColumns.of(curve, PLOT_WIDTH), events);
          }
          return null;
        });
    eventTable(h, events, board.overflows());
    h.append("</div>");
    h.append(SCRIPT);
    return h.toString();
  }

  private static void rankTable(StringBuilder h, ProgressBoard board, ProgressBoard.Summary s) {
    h.append("<table class=\"table table-bordered table-sm\" id=\"danlu-ranks\"><thead><tr>")
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
  }

  private static void charts(StringBuilder h, ChartColumns c, List<TrainingEvent> events) {
    List<long[]> marks = new ArrayList<>(); // {step, kind: 0 checkpoint, 1 attempt/resume}
    List<double[]> evals = new ArrayList<>();
    for (TrainingEvent e : events) {
      if (e.step() < c.firstStep || e.step() > c.lastStep) {
        continue;
      }
      switch (e.kind()) {
        case TrainingEvent.CHECKPOINT -> marks.add(new long[] {e.step(), 0});
        case TrainingEvent.RESUME -> marks.add(new long[] {e.step(), 1});
        case TrainingEvent.EVAL -> evals.add(new double[] {e.step(), e.value()});
        default -> {}
      }
    }
    h.append("<p>Steps ")
        .append(c.firstStep)
        .append("–")
        .append(c.lastStep)
        .append(
            "; per pixel column the lowest and highest value (a spike stays visible however long"
                + " the run). Marks: <span style=\"color:#2ca02c\">┆ checkpoint</span>, <span"
                + " style=\"color:#d62728\">┆ resumed (retry)</span>, <span"
                + " style=\"color:#ff7f0e\">● evaluation</span>, <span style=\"color:#d62728\">▼"
                + " overflow skip</span>. Hover a chart for the step's values.</p>");
    h.append("<div id=\"danlu-tip\" style=\"position:fixed;display:none;background:#fff;")
        .append("border:1px solid #888;padding:4px 6px;font-size:12px;pointer-events:none;")
        .append("z-index:1000;white-space:pre\"></div>");
    chart(h, c, ChartColumns.LOSS, "Training loss (band: raw; line: EMA 0.9)", marks, evals);
    chart(h, c, ChartColumns.LR, "Learning rate", marks, null);
    chart(h, c, ChartColumns.GRAD_NORM, "Gradient norm", marks, null);
    chart(h, c, ChartColumns.TOKENS_PER_SEC, "Tokens/s (all ranks)", marks, null);
    if (c.has(ChartColumns.LOSS_SCALE)) {
      chart(h, c, ChartColumns.LOSS_SCALE, "fp16 loss scale", marks, null);
    }
    hoverData(h, c);
  }

  private static void chart(
      StringBuilder h,
      ChartColumns c,
      int series,
      String title,
      List<long[]> marks,
      List<double[]> evals) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    for (int x = 0; x < c.width; x++) {
      if (!Double.isNaN(c.min[series][x])) {
        lo = Math.min(lo, c.min[series][x]);
        hi = Math.max(hi, c.max[series][x]);
      }
    }
    if (evals != null) {
      for (double[] e : evals) {
        if (!Double.isNaN(e[1])) {
          lo = Math.min(lo, e[1]);
          hi = Math.max(hi, e[1]);
        }
      }
    }
    String id = "danlu-chart-" + new String[] {"loss", "lr", "gradnorm", "tps", "scale"}[series];
    h.append("<h5>").append(escape(title)).append("</h5>");
    int w = LEFT + PLOT_WIDTH + RIGHT;
    h.append("<svg class=\"danlu-chart\" id=\"")
        .append(id)
        .append("\" width=\"")
        .append(w)
        .append("\" height=\"")
        .append(HEIGHT)
        .append("\" style=\"border:1px solid #ccc;background:#fff\">");
    if (lo == Double.POSITIVE_INFINITY) {
      h.append(text(LEFT + 10, HEIGHT / 2, "start", "(no values)")).append("</svg>");
      return;
    }
    double[] ticks = niceTicks(lo, hi);
    double ylo = Math.min(lo, ticks[0]);
    double yhi = Math.max(hi, ticks[ticks.length - 1]);
    if (yhi <= ylo) {
      yhi = ylo + 1;
    }
    Y y = new Y(ylo, yhi);
    // grid and y ticks
    for (double t : ticks) {
      double py = y.of(t);
      h.append(line(LEFT, py, LEFT + PLOT_WIDTH, py, "#eee", null));
      h.append(text(LEFT - 4, py + 4, "end", fmt("%.3g", t)));
    }
    // step axis ticks, the same on every chart
    for (long t : stepTicks(c.firstStep, c.lastStep)) {
      double px = LEFT + c.columnOf(t) + 0.5;
      h.append(line(px, HEIGHT - BOTTOM, px, HEIGHT - BOTTOM + 4, "#555", null));
      h.append(text(px, HEIGHT - 6, "middle", Long.toString(t)));
    }
    h.append(line(LEFT, HEIGHT - BOTTOM, LEFT + PLOT_WIDTH, HEIGHT - BOTTOM, "#555", null));
    for (long[] m : marks) {
      double px = LEFT + c.columnOf(m[0]) + 0.5;
      h.append("<line class=\"")
          .append(m[1] == 0 ? "danlu-mark-checkpoint" : "danlu-mark-resume")
          .append("\" data-step=\"")
          .append(m[0])
          .append("\" ")
          .append(fmt("x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"", px, TOP, px, HEIGHT - BOTTOM))
          .append(" stroke=\"")
          .append(m[1] == 0 ? "#2ca02c" : "#d62728")
          .append("\" stroke-dasharray=\"3,3\"/>");
    }
    if (series == ChartColumns.LOSS) {
      h.append(band(c, series, y));
      h.append(path(c.ema, null, y, "#1f77b4", 2, "danlu-ema"));
    } else {
      h.append(path(c.min[series], c.max[series], c.minFirst[series], y, "#1f77b4"));
    }
    if (series == ChartColumns.GRAD_NORM) {
      for (int x = 0; x < c.width; x++) {
        if (c.skipped[x] > 0) {
          double px = LEFT + x + 0.5;
          h.append("<path class=\"danlu-overflow\" d=\"")
              .append(fmt("M%.1f %dL%.1f %dL%.1f %dZ", px - 4, TOP, px + 4, TOP, px, TOP + 7))
              .append("\" fill=\"#d62728\"/>");
        }
      }
    }
    if (evals != null) {
      for (double[] e : evals) {
        if (!Double.isNaN(e[1])) {
          h.append("<circle class=\"danlu-eval\" ")
              .append(
                  fmt("cx=\"%.1f\" cy=\"%.1f\"", LEFT + c.columnOf((long) e[0]) + 0.5, y.of(e[1])))
              .append(" r=\"4\" fill=\"#ff7f0e\"/>");
        }
      }
    }
    h.append("<line class=\"danlu-cursor\" x1=\"0\" x2=\"0\" y1=\"")
        .append(TOP)
        .append("\" y2=\"")
        .append(HEIGHT - BOTTOM)
        .append("\" stroke=\"#999\" visibility=\"hidden\"/>");
    h.append("</svg>");
  }

  /** The raw loss as a band from each column's lowest to highest value. */
  private static String band(ChartColumns c, int s, Y y) {
    StringBuilder d = new StringBuilder();
    for (int x = 0; x < c.width; x++) {
      if (!Double.isNaN(c.min[s][x])) {
        double px = LEFT + x + 0.5;
        double y0 = y.of(c.max[s][x]);
        double y1 = Math.max(y.of(c.min[s][x]), y0 + 1);
        d.append(fmt("M%.1f %.1fV%.1f", px, y0, y1));
      }
    }
    return "<path class=\"danlu-raw\" d=\"" + d + "\" stroke=\"#aec7e8\" stroke-width=\"1\"/>";
  }

  /** A line through each column's min and max in data order; gaps where a column is empty. */
  private static String path(double[] min, double[] max, boolean[] minFirst, Y y, String color) {
    StringBuilder d = new StringBuilder();
    boolean pen = false;
    for (int x = 0; x < min.length; x++) {
      if (Double.isNaN(min[x])) {
        pen = false;
        continue;
      }
      double px = LEFT + x + 0.5;
      double a = minFirst[x] ? min[x] : max[x];
      double b = minFirst[x] ? max[x] : min[x];
      d.append(pen ? "L" : "M").append(fmt("%.1f %.1f", px, y.of(a)));
      if (b != a) {
        d.append(fmt("L%.1f %.1f", px, y.of(b)));
      }
      pen = true;
    }
    return "<path class=\"danlu-line\" d=\""
        + d
        + "\" fill=\"none\" stroke=\""
        + color
        + "\" stroke-width=\"1.5\"/>";
  }

  private static String path(double[] v, Object unused, Y y, String color, int width, String cls) {
    StringBuilder d = new StringBuilder();
    boolean pen = false;
    for (int x = 0; x < v.length; x++) {
      if (Double.isNaN(v[x])) {
        continue; // the EMA carries over empty columns: keep the line joined
      }
      d.append(pen ? "L" : "M").append(fmt("%.1f %.1f", LEFT + x + 0.5, y.of(v[x])));
      pen = true;
    }
    return "<path class=\""
        + cls
        + "\" d=\""
        + d
        + "\" fill=\"none\" stroke=\""
        + color
        + "\" stroke-width=\""
        + width
        + "\"/>";
  }

  /** Per column: [first step, last step, loss, ema, lr, grad norm, tokens/s, loss scale, skips]. */
  private static void hoverData(StringBuilder h, ChartColumns c) {
    h.append("<script type=\"application/json\" id=\"danlu-hover\">{\"left\":")
        .append(LEFT)
        .append(",\"cols\":[");
    boolean first = true;
    for (int x = 0; x < c.width; x++) {
      if (!first) {
        h.append(',');
      }
      first = false;
      if (c.count[x] == 0) {
        h.append("null");
        continue;
      }
      h.append('[')
          .append(c.stepLo[x])
          .append(',')
          .append(c.stepHi[x])
          .append(',')
          .append(num(c.last[ChartColumns.LOSS][x]))
          .append(',')
          .append(num(c.ema[x]))
          .append(',')
          .append(num(c.last[ChartColumns.LR][x]))
          .append(',')
          .append(num(c.last[ChartColumns.GRAD_NORM][x]))
          .append(',')
          .append(num(c.last[ChartColumns.TOKENS_PER_SEC][x]))
          .append(',')
          .append(num(c.last[ChartColumns.LOSS_SCALE][x]))
          .append(',')
          .append(c.skipped[x])
          .append(']');
    }
    h.append("]}</script>");
  }

  private static void eventTable(StringBuilder h, List<TrainingEvent> events, long overflows) {
    h.append("<h4>Events</h4>");
    if (overflows > ProgressBoard.MAX_OVERFLOW_EVENTS) {
      h.append("<p>")
          .append(overflows)
          .append(" fp16 overflow skips in all; the first ")
          .append(ProgressBoard.MAX_OVERFLOW_EVENTS)
          .append(" are listed, every one is marked on the gradient-norm chart.</p>");
    }
    h.append("<table class=\"table table-bordered table-sm\" id=\"danlu-events\"><thead><tr>")
        .append("<th>Time</th><th>Attempt</th><th>Step</th><th>Event</th><th>Detail</th>")
        .append("</tr></thead><tbody>");
    int shown = 0;
    for (int i = events.size() - 1; i >= 0 && shown < MAX_EVENT_ROWS; i--, shown++) {
      TrainingEvent e = events.get(i);
      h.append("<tr class=\"danlu-event danlu-event-")
          .append(escape(e.kind()))
          .append("\">")
          .append(cell(e.timeMillis() == 0 ? "" : time(e.timeMillis())))
          .append(cell(Integer.toString(e.attempt())))
          .append(cell(e.step() < 0 ? "" : Long.toString(e.step())))
          .append(cell(label(e.kind())))
          .append(cell(e.text()))
          .append("</tr>");
    }
    h.append("</tbody></table>");
    if (events.size() > shown) {
      h.append("<p>")
          .append(events.size() - shown)
          .append(" older events not shown (/training/json has them all).</p>");
    }
  }

  private static String label(String kind) {
    return switch (kind) {
      case TrainingEvent.ATTEMPT -> "attempt started";
      case TrainingEvent.ATTEMPT_FAILED -> "attempt failed";
      case TrainingEvent.RANK_FAILED -> "rank failed";
      case TrainingEvent.CHECKPOINT -> "checkpoint committed";
      case TrainingEvent.EVAL -> "evaluation";
      case TrainingEvent.RESUME -> "resumed";
      case TrainingEvent.OVERFLOW -> "overflow skip";
      case TrainingEvent.FINISHED -> "training finished";
      default -> kind;
    };
  }

  /** The y mapping of one chart. */
  private record Y(double lo, double hi) {
    double of(double v) {
      return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo));
    }
  }

  /** About five round values (1, 2 or 5 times a power of ten) covering [lo, hi]. */
  static double[] niceTicks(double lo, double hi) {
    if (hi <= lo) {
      double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
    double raw = (hi - lo) / 4;
    double mag = Math.pow(10, Math.floor(Math.log10(raw)));
    double f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    double start = Math.floor(lo / step) * step;
    int n = (int) Math.ceil((hi - start) / step - 1e-9) + 1;
    double[] t = new double[Math.max(2, n)];
    for (int i = 0; i < t.length; i++) {
      t[i] = start + i * step;
    }
    return t;
  }

  /** Round step numbers for the shared axis (at most ~8). */
  static List<Long> stepTicks(long first, long last) {
    long span = Math.max(1, last - first);
    double raw = span / 7.0;
    long mag = (long) Math.pow(10, Math.floor(Math.log10(Math.max(1, raw))));
    double f = raw / mag;
    long step = Math.max(1, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag);
    List<Long> out = new ArrayList<>();
    for (long t = (first + step - 1) / step * step; t <= last; t += step) {
      out.add(t);
    }
    if (out.isEmpty()) {
      out.add(first);
    }
    return out;
  }

  private static String num(double v) {
    return Double.isNaN(v) || Double.isInfinite(v) ? "null" : fmt("%.5g", v);
  }

  private static String line(double x1, double y1, double x2, double y2, String color, String c) {
    return fmt(
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>",
        x1, y1, x2, y2, color);
  }

  private static String text(double x, double y, String anchor, String t) {
    return fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"%s\">", x, y, anchor)
        + escape(t)
        + "</text>";
  }

  private static String time(long millis) {
    return TIME.format(Instant.ofEpochMilli(millis));
  }

  private static String cell(String s) {
    return "<td>" + escape(s) + "</td>";
  }

  private static String fmt(String f, Object... args) {
    return String.format(Locale.ROOT, f, args);
  }

  static String escape(String s) {
    return s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }

  /**
   * Hover (a cursor on every chart and the step's values) and, on a live page, the refresh: the new
   * page is fetched and only the training block swapped, so the scroll position stays; the data age
   * counts up every second between refreshes.
   */
  private static final String SCRIPT =
      """
      <script>
      (function () {
        if (window.danluTraining) { return; }
        window.danluTraining = true;
        var names = ['loss', 'EMA', 'lr', 'grad_norm', 'tokens/s', 'loss scale', 'overflow skips'];
        function cols() {
          var el = document.getElementById('danlu-hover');
          return el ? JSON.parse(el.textContent) : null;
        }
        document.addEventListener('mousemove', function (ev) {
          var svg = ev.target.closest ? ev.target.closest('svg.danlu-chart') : null;
          var tip = document.getElementById('danlu-tip');
          var all = document.querySelectorAll('svg.danlu-chart .danlu-cursor');
          var data = svg ? cols() : null;
          var x = data ? Math.floor(ev.clientX - svg.getBoundingClientRect().left - data.left) : -1;
          var c = null;
          if (data && x >= 0 && x < data.cols.length) {
            // the nearest column with steps: a short run leaves most columns empty
            for (var d = 0; d < data.cols.length && !c; d++) {
              if (x - d >= 0 && data.cols[x - d]) { c = data.cols[x - d]; x = x - d; }
              else if (x + d < data.cols.length && data.cols[x + d]) { c = data.cols[x + d]; x = x + d; }
            }
          }
          if (!c) {
            if (tip) { tip.style.display = 'none'; }
            all.forEach(function (l) { l.setAttribute('visibility', 'hidden'); });
            return;
          }
          all.forEach(function (l) {
            l.setAttribute('x1', data.left + x + 0.5);
            l.setAttribute('x2', data.left + x + 0.5);
            l.setAttribute('visibility', 'visible');
          });
          var lines = ['step ' + (c[0] === c[1] ? c[0] : c[0] + '-' + c[1])];
          for (var i = 2; i < c.length; i++) {
            if (c[i] !== null && !(i === 8 && c[i] === 0)) { lines.push(names[i - 2] + ' ' + c[i]); }
          }
          tip.textContent = lines.join('\\n');
          tip.style.left = (ev.clientX + 14) + 'px';
          tip.style.top = (ev.clientY + 14) + 'px';
          tip.style.display = 'block';
        });
        function tickAge() {
          var p = document.getElementById('danlu-age');
          var s = p ? p.querySelector('.danlu-age-s') : null;
          var t = p ? Number(p.getAttribute('data-updated')) : 0;
          if (s && t > 0) { s.textContent = Math.round((Date.now() - t) / 1000); }
        }
        function refresh() {
          fetch(window.location.href, {cache: 'no-store'}).then(function (r) {
            return r.ok ? r.text() : null;
          }).then(function (html) {
            if (!html) { return; }
            var fresh = new DOMParser().parseFromString(html, 'text/html')
                .getElementById('danlu-training');
            var old = document.getElementById('danlu-training');
            if (fresh && old) { old.innerHTML = fresh.innerHTML; tickAge(); }
          }).catch(function () {});
        }
        var root = document.getElementById('danlu-training');
        if (root && root.getAttribute('data-live') === 'true') {
          setInterval(tickAge, 1000);
          setInterval(refresh, 5000);
        }
      })();
      </script>
      """;
}
