package systemtest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
)

// TestReadyMeansConfigured: on a first start, the moment /readyz first answers 200 the seeded
// default pipeline is visible (it once answered 404 in one start of five).
func TestReadyMeansConfigured(t *testing.T) {
	for start := range 3 {
		cfg := app.Config{Data: t.TempDir(), HTTP: "127.0.0.1:0", EmbeddedBroker: "127.0.0.1:0",
			Partitions: 4, ReportingCurrency: "USD", CacheMiB: 8, ShutdownTimeout: 10 * time.Second}
		in, err := testkit.StartInstance(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		root := "http://" + in.Run.HTTPAddr
		deadline := time.Now().Add(time.Minute)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("start %d: never ready", start)
			}
			resp, err := http.Get(root + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			resp, err = http.Get(root + "/api/v1/pipelines/default")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("start %d: /readyz answered 200 while /pipelines/default answered %d", start, resp.StatusCode)
			}
			break
		}
		if err := in.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
