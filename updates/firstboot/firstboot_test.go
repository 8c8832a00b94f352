package firstboot

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeStore keeps records in memory and logs what the service did.
type fakeStore struct {
	entries []Entry
	rec     map[string]map[string]string
	log     []string
}

func (f *fakeStore) Entries() ([]Entry, error) { return f.entries, nil }
func (f *fakeStore) Record(kb string, v map[string]string) error {
	if f.rec == nil {
		f.rec = map[string]map[string]string{}
	}
	if f.rec[kb] == nil {
		f.rec[kb] = map[string]string{}
	}
	for k, x := range v {
		f.rec[kb][k] = x
	}
	return nil
}
func (f *fakeStore) StagedDir(kb string) string { return `C:\Windows\offvm\staged\` + kb }
func (f *fakeStore) RemoveStaged() error        { f.log = append(f.log, "remove staged"); return nil }
func (f *fakeStore) RemoveService() error       { f.log = append(f.log, "remove service"); return nil }
func (f *fakeStore) Reboot(string) error        { f.log = append(f.log, "reboot"); return nil }

// fakeRunner answers DISM with a list of exit codes per KB.
type fakeRunner struct {
	codes map[string][]int
	calls []string
}

func (r *fakeRunner) Run(name string, args ...string) (int, error) {
	cmd := name + " " + strings.Join(args, " ")
	r.calls = append(r.calls, cmd)
	for kb, c := range r.codes {
		if strings.Contains(cmd, `\`+kb+`\`) {
			if len(c) == 0 {
				return 0, errors.New("not runnable")
			}
			code := c[0]
			if len(c) > 1 {
				r.codes[kb] = c[1:]
			}
			return code, nil
		}
	}
	return 0, nil
}

func TestRun(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC) }
	lcu := Entry{KB: "KB5034439", File: "lcu.msu", State: "staged", Order: 1}
	ssu := Entry{KB: "KB5005112", File: "ssu.msu", State: "staged", Order: 0, ServicingStack: true}
	other := Entry{KB: "KB4000001", File: "o.cab", State: "staged", Order: 2}
	cases := []struct {
		name      string
		entries   []Entry
		codes     map[string][]int
		wantOrder []string // KBs in DISM call order
		wantLog   []string
		want      map[string]string // KB -> State/Result/Attempts
	}{
		{"ssu first, all ok", []Entry{lcu, ssu}, nil, []string{"KB5005112", "KB5034439"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB5005112": "done/installed/1", "KB5034439": "done/installed/1"}},
		{"retries then fails", []Entry{lcu}, map[string][]int{"KB5034439": {1, 2, 5}}, []string{"KB5034439", "KB5034439", "KB5034439"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB5034439": "failed/failed/3"}},
		{"second try works", []Entry{lcu}, map[string][]int{"KB5034439": {0x70, 0}}, []string{"KB5034439", "KB5034439"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB5034439": "done/installed/2"}},
		{"restart after all", []Entry{lcu, other}, map[string][]int{"KB5034439": {3010}}, []string{"KB5034439", "KB4000001"},
			[]string{"remove staged", "remove service", "reboot"},
			map[string]string{"KB5034439": "done/installed, restart required/1", "KB4000001": "done/installed/1"}},
		{"ssu restart stops the run", []Entry{lcu, ssu}, map[string][]int{"KB5005112": {3010}}, []string{"KB5005112"},
			[]string{"reboot"},
			map[string]string{"KB5005112": "done/installed, restart required/1"}},
		{"not applicable", []Entry{other}, map[string][]int{"KB4000001": {int(int32(-2146498530))}}, []string{"KB4000001"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB4000001": "done/not applicable/1"}},
		{"cut-off run counts", []Entry{{KB: "KB1234567", File: "x.msu", State: "staged", Attempts: 2}}, map[string][]int{"KB1234567": {1}}, []string{"KB1234567"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB1234567": "failed/failed/3"}},
		{"dism missing", []Entry{other}, map[string][]int{"KB4000001": {}}, []string{"KB4000001", "KB4000001", "KB4000001"},
			[]string{"remove staged", "remove service"},
			map[string]string{"KB4000001": "failed/failed: not runnable/3"}},
		{"done entries skipped", []Entry{{KB: "KB1", State: "done"}}, nil, nil,
			[]string{"remove staged", "remove service"}, map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &fakeStore{entries: c.entries}
			r := &fakeRunner{codes: c.codes}
			if _, err := Run(st, r, now); err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, call := range r.calls {
				if !strings.HasPrefix(call, "dism.exe /Online /Add-Package /PackagePath:") || !strings.HasSuffix(call, " /NoRestart /Quiet") {
					t.Errorf("call %q", call)
				}
				kb := strings.Split(strings.TrimPrefix(call, `dism.exe /Online /Add-Package /PackagePath:C:\Windows\offvm\staged\`), `\`)[0]
				order = append(order, kb)
			}
			if !reflect.DeepEqual(order, c.wantOrder) {
				t.Errorf("DISM order %v, want %v", order, c.wantOrder)
			}
			if !reflect.DeepEqual(st.log, c.wantLog) {
				t.Errorf("actions %v, want %v", st.log, c.wantLog)
			}
			for kb, want := range c.want {
				v := st.rec[kb]
				if got := v["State"] + "/" + v["Result"] + "/" + v["Attempts"]; got != want {
					t.Errorf("%s: %s, want %s", kb, got, want)
				}
				if v["Finished"] != "2026-12-03T08:00:00Z" {
					t.Errorf("%s: Finished %q", kb, v["Finished"])
				}
			}
			if len(c.want) == 0 && len(st.rec) != 0 {
				t.Errorf("records written: %v", st.rec)
			}
		})
	}
}
