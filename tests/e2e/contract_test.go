package e2e

// Promises of docs/explanation/node-controller.md, docs/reference/metrics.md
// and docs/reference/flags.md checked on the real kube-apiserver with the
// CCM binary.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// conflictProxy stands between the CCM and kube-apiserver. Before it
// forwards the first spec patch of node (the one removing the taint), it
// makes a concurrent write of its own: concurrent() adds a taint with the
// admin client, which bumps the Node's resourceVersion. It counts the 409
// answers to that node's spec patches.
type conflictProxy struct {
	srv       *httptest.Server
	intercept atomic.Bool
	conflicts atomic.Int32
	specOK    atomic.Int32
}

func newConflictProxy(t *testing.T, w *harness.World, node string, concurrent func()) *conflictProxy {
	t.Helper()
	target, err := url.Parse(w.APIServerURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &conflictProxy{}
	p.intercept.Store(true)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	rp.FlushInterval = -1 // watches stream
	path := "/api/v1/nodes/" + node
	rp.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		if r.Method == http.MethodPatch && r.URL.Path == path {
			switch resp.StatusCode {
			case http.StatusConflict:
				p.conflicts.Add(1)
			case http.StatusOK:
				p.specOK.Add(1)
			}
		}
		return nil
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && r.URL.Path == path {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"taints"`)) && p.intercept.CompareAndSwap(true, false) {
				concurrent()
			}
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() {
		p.srv.CloseClientConnections() // the CCM's watches
		p.srv.Close()
	})
	return p
}

// kubeconfigVia writes a copy of the CCM's kubeconfig whose server is url.
func kubeconfigVia(t *testing.T, w *harness.World, server string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(w.CCMKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
		c.InsecureSkipTLSVerify = true // the proxy's test certificate
		c.CertificateAuthorityData = nil
	}
	path := filepath.Join(w.Dir, "ccm-via-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSpecPatchConflict: the spec patch carries the resourceVersion the CCM
// read, so a write that lands between the CCM's read and its spec patch
// makes the patch fail with 409 (APIConflict Warning, counted), the CCM
// retries, and the final Node has both the CCM's changes and the concurrent
// one: the taint added meanwhile is not overwritten by the CCM's taint list.
// The binary's /metrics is scraped for the conflict and the other series
// docs/reference/metrics.md promises.
func TestSpecPatchConflict(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	const id = "i-0a0000000000000c1" // pre-prefixed
	in := instanceByID(w, id)
	name := in.PrivateDNSName
	concurrentTaint := corev1.Taint{Key: "example.com/maintenance", Value: "concurrent", Effect: corev1.TaintEffectNoSchedule}
	concurrent := func() {
		n, err := w.Admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("concurrent write: %v", err)
			return
		}
		n.Spec.Taints = append(n.Spec.Taints, concurrentTaint)
		if _, err := w.Admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	proxy := newConflictProxy(t, w, name, concurrent)
	if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: name, ProviderID: providerid.Format(in.Zone, id)}); err != nil {
		t.Fatal(err)
	}
	ccm := startCCM(t, w, harness.CCMOptions{ExtraArgs: []string{"--kubeconfig=" + kubeconfigVia(t, w, proxy.srv.URL)}})

	node := waitNodes(ctx, t, w, []string{name}, time.Minute, initialized)[name]
	eni := primaryENI(in)
	if node.Spec.PodCIDR != eni.IPv6Prefixes[0] {
		t.Errorf("podCIDR %q, want %s", node.Spec.PodCIDR, eni.IPv6Prefixes[0])
	}
	var kept bool
	for _, tn := range node.Spec.Taints {
		kept = kept || tn == concurrentTaint
	}
	if !kept {
		t.Errorf("the taint written concurrently was overwritten: taints %v", node.Spec.Taints)
	}
	if proxy.intercept.Load() {
		t.Fatal("the CCM's spec patch never went through the proxy")
	}
	conflicts := int(proxy.conflicts.Load())
	if conflicts < 1 {
		t.Fatalf("no 409 for the spec patch made after a concurrent write (spec patches answered 200: %d)", proxy.specOK.Load())
	}
	if ev := warningEvent(ctx, t, w, name, "patch node spec"); ev.Reason != "APIConflict" {
		t.Errorf("event %s %q, want APIConflict", ev.Reason, ev.Message)
	}

	m := scrapeMetrics(t, ccm.MetricsURL, w.AdminCfg.BearerToken)
	// Exactly what the scenario made: one node initialized, one successful
	// spec write, as many APIConflicts as the server answered 409, no
	// assignment (the ENI was pre-prefixed).
	for series, want := range map[string]float64{
		`cloudprovider_aws_node_initialized_total`:                                       1,
		`cloudprovider_aws_node_api_writes_total{kind="spec"}`:                           1,
		`cloudprovider_aws_node_sync_errors_total{reason="APIConflict"}`:                 float64(conflicts),
		`cloudprovider_aws_node_initialization_latency_seconds_count`:                    1,
		`cloudprovider_aws_node_ipv6_assignments_total{kind="prefix",outcome="success"}`: 0,
	} {
		if got := m[series]; got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := m[`cloudprovider_aws_api_requests_total{code="ok",operation="DescribeInstances"}`]; got < 1 {
		t.Errorf(`api_requests_total{operation="DescribeInstances",code="ok"} = %v, want at least 1`, got)
	}
	if got := m[`cloudprovider_aws_node_api_writes_total{kind="status"}`]; got < 1 || got > 2 {
		// One status write; a second only if the retry read a cached Node
		// that did not show the first yet.
		t.Errorf(`api_writes_total{kind="status"} = %v, want 1 or 2`, got)
	}
	noForbidden(t, ccm)
}

// scrapeMetrics GETs the CCM's /metrics with a bearer token (the CCM
// authorizes it with a SubjectAccessReview) and parses the text format into
// series -> value, with labels sorted as the exposition writes them.
func scrapeMetrics(t *testing.T, metricsURL, token string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(tok string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, metricsURL, nil)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return c.Do(req)
	}
	if resp, err := get(""); err != nil {
		t.Fatalf("GET %s: %v", metricsURL, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s without a token: %s, want 401 or 403", metricsURL, resp.Status)
		}
	}
	resp, err := get(token)
	if err != nil {
		t.Fatalf("GET %s: %v", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", metricsURL, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUntaggedCloudRefused: without a cluster ID (none configured, and the
// CCM's own instance has no cluster tag) the binary exits with a message
// naming --allow-untagged-cloud; with the flag it starts.
func TestUntaggedCloudRefused(t *testing.T) {
	sc := demoScenario(t)
	for i := range sc.Instances {
		if sc.Instances[i].ID == sc.IMDSInstance {
			sc.Instances[i].Tags = map[string]string{"Name": "control-plane-a"}
		}
	}
	w := newWorld(t, sc, false)
	_, err := w.StartCCM(t.Context(), harness.CCMOptions{})
	if err == nil {
		t.Fatal("the CCM started without a cluster ID and without --allow-untagged-cloud")
	}
	for _, want := range []string{"exited before it was ready", "No cluster ID found", "--allow-untagged-cloud"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error lacks %q:\n%v", want, err)
		}
	}
	ccm := startCCM(t, w, harness.CCMOptions{ExtraArgs: []string{"--allow-untagged-cloud"}})
	if ccm.Exited() {
		t.Fatalf("CCM with --allow-untagged-cloud exited:\n%s", tail(ccm.Log(), 3000))
	}
	if !strings.Contains(ccm.Log(), "continuing because of --allow-untagged-cloud") {
		t.Errorf("no warning about the missing cluster ID in the log:\n%s", tail(ccm.Log(), 3000))
	}
}
