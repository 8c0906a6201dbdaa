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
 * The "Training" tab of the Spark UI: summary, per-rank table (step time shows the slow executor),
 * and the loss curve; {@code /training/json} serves the same as JSON. Spark's tab API is
 * Scala-{@code private[spark]}, which binds Scala callers only; from Java the classes are public,
 * so this extends them directly. Pages refresh themselves every few seconds.
 */
public final class TrainingUiTab extends SparkUITab {
  public TrainingUiTab(SparkUI ui, ProgressBoard board) {
    super(ui, "training");
    attachPage(new Page(this, board));
  }

  @Override
  public String name() {
    return "Training";
  }

  private static final class Page extends WebUIPage {
    private final TrainingUiTab tab;
    private final ProgressBoard board;

    Page(TrainingUiTab tab, ProgressBoard board) {
      super("");
      this.tab = tab;
      this.board = board;
    }

    @Override
    public scala.collection.immutable.Seq<scala.xml.Node> render(HttpServletRequest request) {
      scala.collection.immutable.Seq<scala.xml.Node> content =
          CollectionConverters.asScala(
                  List.<scala.xml.Node>of(new scala.xml.Unparsed(TrainingPageHtml.render(board))))
              .toList();
      return UIUtils.headerSparkPage(
          request, "Training", () -> content, tab, Option.empty(), false, false, false);
    }

    @Override
    public JValue renderJson(HttpServletRequest request) {
      try {
        return org.json4s.jackson.JsonMethods$.MODULE$.fromJsonNode(
            new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(TrainingPageHtml.json(board)));
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
