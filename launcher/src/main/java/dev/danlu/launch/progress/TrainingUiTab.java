package dev.danlu.launch.progress;

import jakarta.servlet.http.HttpServletRequest;
import java.util.List;
import org.apache.spark.ui.SparkUI;
import org.apache.spark.ui.SparkUITab;
import org.apache.spark.ui.UIUtils;
import org.apache.spark.ui.WebUIPage;
import org.json4s.JValue;
import scala.Option;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The "Training" tab of the Spark UI, live in the application and afterwards in the History Server
 * ({@link TrainingHistoryPlugin}): summary, per-rank table (step time shows the slow executor),
 * charts and events ({@link TrainingPageHtml}); {@code /training/json} serves the same as JSON.
 * Spark's tab API is Scala-{@code private[spark]}, which binds Scala callers only; from Java the
 * classes are public, so this extends them directly.
 */
public final class TrainingUiTab extends SparkUITab {
  /** The live tab of a running application. */
  public TrainingUiTab(SparkUI ui, ProgressBoard board) {
    this(ui, () -> board, true);
  }

  /**
   * @param board the board to show (the History Server's is rebuilt from the event log)
   * @param live true in the running application: the page refreshes itself
   */
  TrainingUiTab(SparkUI ui, java.util.function.Supplier<ProgressBoard> board, boolean live) {
    super(ui, "training");
    attachPage(new Page(this, board, live));
  }

  @Override
  public String name() {
    return "Training";
  }

  private static final class Page extends WebUIPage {
    private final TrainingUiTab tab;
    private final java.util.function.Supplier<ProgressBoard> board;
    private final boolean live;

    Page(TrainingUiTab tab, java.util.function.Supplier<ProgressBoard> board, boolean live) {
      super("");
      this.tab = tab;
      this.board = board;
      this.live = live;
    }

    @Override
    public scala.collection.immutable.Seq<scala.xml.Node> render(HttpServletRequest request) {
      scala.collection.immutable.Seq<scala.xml.Node> content =
          CollectionConverters.asScala(
                  List.<scala.xml.Node>of(
                      new scala.xml.Unparsed(TrainingPageHtml.render(board.get(), live))))
              .toList();
      return UIUtils.headerSparkPage(
          request, "Training", () -> content, tab, Option.empty(), false, false, false);
    }

    @Override
    public JValue renderJson(HttpServletRequest request) {
      try {
        return org.json4s.jackson.JsonMethods$.MODULE$.fromJsonNode(
            new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(TrainingPageHtml.json(board.get())));
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
