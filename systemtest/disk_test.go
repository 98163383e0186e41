package systemtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// diskRig is a serve process whose --data is on a disk the test can break, with its broker in
// a separate process on the ordinary disk: the local stores fail, Kafka does not.
type diskRig struct {
	t      *testing.T
	broker string
	data   string
	p      *proc
	base   string
	sent   map[string]int // commands sent per opportunity, besides its create
}

// mountTmpfs mounts a tmpfs of size bytes at dir, or skips the test where the machine does
// not allow it (not root, no mount privilege).
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

func newDiskRig(t *testing.T, data string, prepare func(*exec.Cmd)) *diskRig {
	t.Helper()
	addr := freePort(t)
	startBrokerProc(t, t.TempDir(), addr)
	r := &diskRig{t: t, broker: addr, data: data, sent: map[string]int{}}
	r.p = startProcWith(t, prepare, "serve", "--brokers", addr, "--data", data, "--http", "127.0.0.1:0",
		"--partitions", "1", "--memtable-mib", "1", "--instance-id", "none")
	r.base = "http://" + r.p.http + "/api/v1"
	return r
}

// get answers a GET with its status and decoded JSON body.
func (r *diskRig) get(path string) (int, map[string]any) {
	r.t.Helper()
	resp := testkit.Attach(r.t, strings.TrimSuffix(r.base, "/api/v1")).Do("GET", path, nil, nil)
	var m map[string]any
	_ = json.Unmarshal(resp.Body, &m) // not every answer is JSON: then m is nil
	return resp.Status, m
}

// create opens n opportunities over HTTP, waiting for each.
func (r *diskRig) create(n int) {
	r.t.Helper()
	s := testkit.Attach(r.t, r.base)
	for i := 0; i < n; i++ {
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(fmt.Sprintf("opp-%02d", i)), testkit.Wait), 201)
	}
}

// produceUpdates sends n amount updates round-robin over the opportunities straight to Kafka,
// as the upstream lead service does: the broker takes them whatever the service's disk says,
// and each must be applied once the disk takes writes again.
func (r *diskRig) produceUpdates(opps, n int, tag string) {
	r.t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("opp-%02d", i%opps)
		amount := fmt.Sprintf("%d.00", 20000+i)
		msgs = append(msgs, testkit.CommandMessage(r.t, domain.Command{Type: domain.CmdUpdate, CommandID: fmt.Sprintf("%s-%d", tag, i),
			OpportunityID: id, Actor: "upstream", IssuedAt: time.Now().UTC(), Update: &domain.UpdateOpportunity{Amount: &amount}}))
		r.sent[id]++
	}
	testkit.Produce(r.t, r.broker, topics.Commands, msgs...)
}

// waitDegraded waits until /readyz names a storage cause containing want, and checks what a
// degraded service must do: refuse a write with the same cause, serve reads, stay alive.
func (r *diskRig) waitDegraded(want string) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r.p.dead() {
			r.t.Fatalf("the service died on the failing disk:\n%s", tail(r.p.logs.String(), 4000))
		}
		code, m := r.get("/readyz")
		if code == 503 && m["code"] == "storage_unavailable" {
			if d, _ := m["detail"].(string); !strings.Contains(d, want) {
				r.t.Fatalf("/readyz names %q, want %q", d, want)
			}
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("/readyz never said the storage fails (last %d %v)\n%s", code, m, tail(r.p.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := testkit.Attach(r.t, r.base)
	w := s.Do("POST", "/opportunities", testkit.CreateBody("opp-refused"), testkit.Wait)
	if w.Status != 503 || !bytes.Contains(w.Body, []byte("storage_unavailable")) || !bytes.Contains(w.Body, []byte(want)) {
		r.t.Fatalf("write while the disk fails: %d %s", w.Status, w.Body)
	}
	if g := s.Do("GET", "/opportunities/opp-00", nil, nil); g.Status != 200 {
		r.t.Fatalf("read while the disk fails: %d %s", g.Status, g.Body)
	}
	if v := r.p.metric("crm_storage_degraded"); v != 1 {
		r.t.Fatalf("crm_storage_degraded = %v while degraded", v)
	}
	if v := r.p.metricSum("crm_storage_errors_total"); v < 1 {
		r.t.Fatalf("crm_storage_errors_total = %v while degraded", v)
	}
	// A while longer: alive, and each cause logged once, not once per retry.
	time.Sleep(3 * time.Second)
	if r.p.dead() {
		r.t.Fatalf("the service died on the failing disk:\n%s", tail(r.p.logs.String(), 4000))
	}
	logs := r.p.logs.String()
	if n := strings.Count(logs, "local storage refuses writes"); n == 0 || n > 12 {
		r.t.Fatalf("%d first-failure lines (want each cause once):\n%s", n, tail(logs, 4000))
	}
	if len(logs) > 1<<20 {
		r.t.Fatalf("%d bytes of log while the disk failed", len(logs))
	}
}

// waitRecovered waits for /readyz 200 after the disk came back, then checks that every
// command sent meanwhile was applied and that writes work again.
func (r *diskRig) waitRecovered(opps int) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := r.get("/readyz"); code == 200 {
			break
		}
		if r.p.dead() || time.Now().After(deadline) {
			r.t.Fatalf("no recovery after the disk came back (dead %v)\n%s", r.p.dead(), tail(r.p.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := testkit.Attach(r.t, r.base)
	for i := 0; i < opps; i++ {
		id := fmt.Sprintf("opp-%02d", i)
		want := float64(1 + r.sent[id])
		testkit.Eventually(r.t, id+" applied every command", func() bool {
			g := s.Do("GET", "/opportunities/"+id, nil, nil)
			return g.Status == 200 && g.JSON(r.t)["version"] == want
		})
	}
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-after"), testkit.Wait), 201)
	if !strings.Contains(r.p.logs.String(), "local storage writes again") {
		r.t.Fatal("the recovery was not logged")
	}
	if v := r.p.metric("crm_storage_degraded"); v != 0 {
		r.t.Fatalf("crm_storage_degraded = %v after recovery", v)
	}
}

// fillDisk writes a file until the file system is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	// The last partial chunk: byte by byte down to the last page.
	small := make([]byte, 4096)
	for {
		if _, err := f.Write(small); err != nil {
			break
		}
	}
	return path
}

// TestDiskFullDegradesNeverCrashes is finding 2 of the reliability issue on a full disk:
// pebble's "fatal commit error: no space left on device" used to panic the process 7-23 s in,
// reads included. The local stores' disk (a 64 MiB tmpfs) fills up while commands keep
// arriving from Kafka; the service must stay up, refuse HTTP writes with 503 naming the cause,
// serve reads, say why on /readyz and in a metric, log the cause once, and when space returns
// apply every command that arrived meanwhile by itself.
func TestDiskFullDegradesNeverCrashes(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	data := t.TempDir()
	mountTmpfs(t, data, 64<<20)
	r := newDiskRig(t, data, nil)
	const opps = 10
	r.create(opps)
	filler := fillDisk(t, data)
	r.produceUpdates(opps, 1500, "full")
	r.waitDegraded("no space left on device")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.waitRecovered(opps)
}

// TestReadOnlyDataDirDegradesNeverCrashes is finding 2 on a data directory that stops being
// writable (the service runs as an unprivileged user, so permissions bind it): the process
// used to die in pebble's rotateWAL ("sync: unlock of unlocked mutex") within 3 s of a write
// burst. Now it waits, degraded, and goes on when the permission returns.
func TestReadOnlyDataDirDegradesNeverCrashes(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("running the service as another user needs root")
	}
	const uid, gid = 65534, 65534 // nobody
	root, err := os.MkdirTemp("", "crm-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	bin := filepath.Join(root, "crm-pipeline")
	data := filepath.Join(root, "data")
	raw, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	asNobody := func(c *exec.Cmd) {
		c.Path = bin
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		c.Env = append(os.Environ(), "HOME="+data, "GOCOVERDIR=")
	}
	r := newDiskRig(t, data, asNobody)
	const opps = 10
	r.create(opps)
	// Every directory of the local state read-only: no new WAL, table or manifest.
	var dirs []string
	_ = filepath.WalkDir(filepath.Join(data, "state"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	r.produceUpdates(opps, 3000, "ro")
	r.waitDegraded("permission denied")
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.waitRecovered(opps)
}
