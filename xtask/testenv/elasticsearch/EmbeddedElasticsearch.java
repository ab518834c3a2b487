import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.Netty4Plugin;

/**
 * Starts one real Elasticsearch node in this JVM, bound to 127.0.0.1, for kbackup's tests.
 *
 * Usage: java -cp 'classes:lib/*' EmbeddedElasticsearch HOME_DIR HTTP_PORT TRANSPORT_PORT
 * HOME_DIR receives data/, logs/ and repo/ (the node's path.repo, for fs snapshot repositories).
 * The node runs until the process is terminated.
 */
public final class EmbeddedElasticsearch {
    /** Node with the classpath plugins given (the constructor that takes them is protected). */
    static final class TestNode extends Node {
        TestNode(Environment environment) {
            super(environment, List.of(Netty4Plugin.class), true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedElasticsearch HOME_DIR HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        for (String dir : List.of("data", "logs", "repo", "config")) {
            Files.createDirectories(home.resolve(dir));
        }
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("path.repo", home.resolve("repo").toString())
            .put("cluster.name", "kbackup-test")
            .put("node.name", "n0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", args[1])
            .put("transport.port", args[2])
            .put("action.auto_create_index", "true")
            .put("cluster.routing.allocation.disk.threshold_enabled", "false")
            .build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "n0");
        Node node = new TestNode(environment);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
            stopped.countDown();
        }));
        node.start();
        System.err.println("elasticsearch started on http://127.0.0.1:" + args[1]);
        stopped.await();
    }
}
