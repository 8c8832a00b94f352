package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// slurm is a single-node Slurm (slurmctld and slurmd on localhost, munge
// for authentication) that a test starts in a folder of its own and stops.
type slurm struct {
	dir, conf string
	env       []string
}

// freePort asks the kernel for a TCP port nobody listens on.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon starts a daemon in the foreground and ends it (by its pid)
// when the test ends.
func startDaemon(t *testing.T, log string, name string, args ...string) {
	f, err := os.Create(log)
	must(t, err)
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	must(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func startSlurm(t *testing.T) *slurm {
	for _, tool := range []string{"slurmctld", "slurmd", "sbatch", "sinfo", "munged"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: make test-long installs slurm-wlm and munge", tool)
		}
	}
	s := &slurm{dir: t.TempDir()}
	must(t, os.Chmod(s.dir, 0o755))
	munge := filepath.Join(s.dir, "munge")
	must(t, os.Mkdir(munge, 0o755))
	key := make([]byte, 1024)
	f, err := os.Open("/dev/urandom")
	must(t, err)
	f.Read(key)
	f.Close()
	must(t, os.WriteFile(filepath.Join(munge, "key"), key, 0o600))
	sock := filepath.Join(munge, "sock")
	startDaemon(t, filepath.Join(s.dir, "munged.out"), "munged", "-F", "-f", "--key-file="+filepath.Join(munge, "key"),
		"--socket="+sock, "--pid-file="+filepath.Join(munge, "pid"), "--log-file="+filepath.Join(munge, "log"),
		"--seed-file="+filepath.Join(munge, "seed"))
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range []string{"state", "spool"} {
		must(t, os.Mkdir(filepath.Join(s.dir, d), 0o755))
	}
	s.conf = filepath.Join(s.dir, "slurm.conf")
	// slurmctld runs only on the host its configuration names
	host, err := os.Hostname()
	must(t, err)
	host, _, _ = strings.Cut(host, ".")
	conf := fmt.Sprintf(`ClusterName=offvmtest
SlurmctldHost=%s(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%s
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.pid
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
NodeName=%s NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN
PartitionName=offvm Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, host, freePort(t), freePort(t), sock, s.dir, s.dir, s.dir, s.dir, s.dir, s.dir, host, 2)
	must(t, os.WriteFile(s.conf, []byte(conf), 0o644))
	s.env = append(os.Environ(), "SLURM_CONF="+s.conf)
	startDaemon(t, filepath.Join(s.dir, "slurmctld.out"), "slurmctld", "-D", "-i", "-f", s.conf)
	startDaemon(t, filepath.Join(s.dir, "slurmd.out"), "slurmd", "-D", "-N", host, "-f", s.conf)
	for i := 0; i < 200; i++ {
		out, _ := s.command("timeout", "5", "sinfo", "-h", "-o", "%T").Output()
		if strings.TrimSpace(string(out)) == "idle" {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "slurmctld.log"))
	dlog, _ := os.ReadFile(filepath.Join(s.dir, "slurmd.log"))
	ctl, _ := os.ReadFile(filepath.Join(s.dir, "slurmctld.out"))
	t.Fatalf("the Slurm node never became idle\n%s\nslurmctld: %s\nslurmd: %s", ctl, log, dlog)
	return nil
}

func (s *slurm) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Env = s.env
	return c
}

// TestLongSlurmArray: deploy/slurm/patch-array.sh on a real single-node
// Slurm submits 8 array tasks over a 200-image library and a merge job;
// every image is patched exactly once (one "applied" among all tasks, one
// record in the image, read with debugfs; e2fsck passes), none fails, and
// the merged report lists all 200.
func TestLongSlurmArray(t *testing.T) {
	if os.Getenv("OFFVM_LONG") == "" {
		t.Skip("a long test: make test-long runs it (OFFVM_LONG=1)")
	}
	testutil.RequireRoot(t)
	const images, shards = 200, 8
	s := startSlurm(t)
	lib, imgs := makeFleet(t, images)
	bundle := makeFleetBundle(t)
	out := t.TempDir()
	script := filepath.Join(testutil.ModuleRoot(), "deploy", "slurm", "patch-array.sh")
	cmd := s.command(script, "-n", fmt.Sprint(shards), "-o", out, "-w", bundle, lib)
	cmd.Env = append(cmd.Env, "OFFVM="+offvm)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+out+"/*.log").CombinedOutput()
		t.Fatalf("patch-array.sh: %v\n%s\n%s", err, b, logs)
	} else {
		t.Logf("patch-array.sh (%s):\n%s", time.Since(start).Round(time.Second), b)
	}

	b, err := os.ReadFile(filepath.Join(out, "apply.jsonl"))
	must(t, err)
	var res []shardResult
	must(t, jsonLines(string(b), &res))
	applied := map[string]string{}
	for _, r := range res {
		if r.Status != "applied" {
			t.Errorf("%+v", r)
		}
		if _, dup := applied[r.Image]; dup {
			t.Errorf("%s applied twice", r.Image)
		}
		applied[r.Image] = r.When
	}
	for i := 0; i < shards; i++ {
		if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("apply-%d.jsonl", i))); err != nil {
			t.Errorf("task %d left no results: %v", i, err)
		}
	}
	for _, img := range imgs {
		when, ok := applied[img]
		if !ok {
			t.Errorf("%s was not patched", img)
			continue
		}
		var r struct{ ID, Applied string }
		if rec := fleetRecord(t, img); json.Unmarshal([]byte(rec), &r) != nil || r.Applied != when {
			t.Errorf("%s: record %q, task said %s", img, rec, when)
		}
	}
	var rep struct {
		Rows []struct {
			Path    string
			Patches int
		} `json:"images"`
	}
	b, err = os.ReadFile(filepath.Join(out, "report.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &rep))
	if len(rep.Rows) != images {
		t.Fatalf("the merged report lists %d images, want %d", len(rep.Rows), images)
	}
	for _, r := range rep.Rows {
		if r.Patches != 1 {
			t.Errorf("merged report: %s has %d patches", r.Path, r.Patches)
		}
	}
}
