package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// k8sJobs reads deploy/kubernetes/patch-job.yaml with python3's yaml (a
// parser no one here wrote) into JSON.
func k8sJobs(t *testing.T) []map[string]any {
	t.Helper()
	testutil.RequireTool(t, "python3", "python3")
	p := filepath.Join(testutil.ModuleRoot(), "deploy", "kubernetes", "patch-job.yaml")
	out, err := exec.Command("/usr/bin/python3", "-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", p).CombinedOutput()
	if err != nil {
		t.Skipf("python3 yaml: %v %s (install python3-yaml)", err, out)
	}
	var docs []map[string]any
	must(t, json.Unmarshal(out, &docs))
	return docs
}

func dig(v any, path ...any) any {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// TestKubernetesJob: the example is an Indexed Job of 8 shards with no
// privileges, and the shell its pods run, run here index by index with the
// Job controller's JOB_COMPLETION_INDEX (then the merge pod's), patches a
// library once per image and reports on all of it.
func TestKubernetesJob(t *testing.T) {
	docs := k8sJobs(t)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want the patch Job and the merge Job", len(docs))
	}
	job, merge := docs[0], docs[1]
	if dig(job, "spec", "completionMode") != "Indexed" || dig(job, "spec", "completions") != float64(8) {
		t.Errorf("patch Job spec: %v", job["spec"])
	}
	c := dig(job, "spec", "template", "spec", "containers", 0)
	if dig(c, "securityContext", "allowPrivilegeEscalation") != false || dig(c, "securityContext", "privileged") != nil {
		t.Errorf("patch pod asks for privileges: %v", dig(c, "securityContext"))
	}
	b, _ := json.Marshal(job)
	if strings.Contains(string(b), "/dev/fuse") || strings.Contains(string(b), "SYS_ADMIN") {
		t.Errorf("patch Job needs FUSE or SYS_ADMIN")
	}

	lib, imgs := makeFleet(t, 16)
	bundle := makeFleetBundle(t)
	results := t.TempDir()
	env := func(c any, extra ...string) []string {
		e := append(os.Environ(), "PATH="+filepath.Dir(offvm)+":"+os.Getenv("PATH"))
		for _, v := range dig(c, "env").([]any) {
			name := dig(v, "name").(string)
			val := dig(v, "value").(string)
			switch name {
			case "BUNDLE":
				val = bundle
			case "LIBRARY":
				val = lib
			case "RESULTS":
				val = results
			case "TMPDIR":
				val = t.TempDir()
			}
			e = append(e, name+"="+val)
		}
		return append(e, extra...)
	}
	script := dig(c, "args", 0).(string)
	for i := 0; i < 8; i++ {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = env(c, fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pod %d: %v\n%s", i, err, out)
		}
	}
	mc := dig(merge, "spec", "template", "spec", "containers", 0)
	cmd := exec.Command("/bin/sh", "-c", dig(mc, "args", 0).(string))
	cmd.Env = env(mc)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "16 images, 0 failed") {
		t.Fatalf("merge pod: %v\n%s", err, out)
	}
	var rep struct {
		Rows []struct{ Path string } `json:"images"`
	}
	rb, err := os.ReadFile(filepath.Join(results, "report.json"))
	must(t, err)
	must(t, json.Unmarshal(rb, &rep))
	if len(rep.Rows) != len(imgs) {
		t.Errorf("merged report lists %d images of %d", len(rep.Rows), len(imgs))
	}
	for _, img := range imgs[:3] {
		if rec := fleetRecord(t, img); !strings.Contains(rec, fleetBundleID) {
			t.Errorf("%s: record %q", img, rec)
		}
	}
}

// TestSlurmScriptUsage: patch-array.sh names its mistakes (exit 2)
// before it submits anything.
func TestSlurmScriptUsage(t *testing.T) {
	script := filepath.Join(testutil.ModuleRoot(), "deploy", "slurm", "patch-array.sh")
	for _, args := range [][]string{{}, {"-n", "x", "a", "b"}, {"-n", "0", "a", "b"}, {"--bogus", "a", "b"}, {"only-one"}} {
		cmd := exec.Command(script, args...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("patch-array.sh %v: %v\n%s", args, err, out)
		}
	}
}
