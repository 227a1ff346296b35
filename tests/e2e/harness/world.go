// Package harness starts the test world on loopback: etcd, kube-apiserver,
// ec2sim and the CCM binary, configured from the shipped manifests. The e2e
// tests, `make demo` and `make bench` use it.
package harness

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// Options configure a World.
type Options struct {
	// Dir holds the world's files; a new temp dir when empty.
	Dir string
	// Scenario is the ec2sim scenario; required.
	Scenario *ec2sim.Scenario
	// Throttling turns on ec2sim's AWS-default token buckets.
	Throttling bool
	// Log receives progress lines; nil is silent.
	Log func(format string, args ...any)
	// IPv6Only runs every process of the world on [::1] only, for a network
	// namespace with no IPv4 address: etcd, kube-apiserver (IPv6 service
	// CIDR), ec2sim and the CCM. The CCM gets only ec2sim's EC2 URL from the
	// environment: no static keys and no IMDS endpoint, so it must find IMDS
	// itself (IMDSAddr) and take instance-role credentials from it.
	IPv6Only bool
	// IMDSAddr is an extra ec2sim listener serving IMDS only, e.g.
	// "[fd00:ec2::254]:80" where AWS serves IMDS over IPv6.
	IMDSAddr string
	// DisablePriorityAndFairness runs kube-apiserver with
	// --enable-priority-and-fairness=false and raised max-inflight limits
	// (1000 / 500). By default API Priority and Fairness is on with the
	// default max-inflight limits (400 / 200), as in a real cluster: the
	// CCM's ServiceAccounts land in the kube-system-service-accounts
	// FlowSchema (priority level workload-high); the admin client
	// (system:masters) is exempt.
	DisablePriorityAndFairness bool
}

// World is a running test world. Stop it with Close.
type World struct {
	Dir      string
	Root     string // repository root
	Bin      string // _output/bin
	Sim      *ec2sim.Sim
	Admin    *kubernetes.Clientset
	AdminCfg *rest.Config
	// CCMKubeconfig authenticates as the CCM's ServiceAccount.
	CCMKubeconfig string
	APIServerURL  string

	etcdURL string
	mapper  meta.ResettableRESTMapper

	opts    Options
	ownDir  bool
	mu      sync.Mutex
	procs   []*Proc
	closers []func()
}

// Proc is a process started by the world, logging to a file.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	err     error
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns what the process has written so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() {
	if p.Cmd.Process != nil {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// Stop sends SIGTERM, waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// RepoRoot finds the repository root from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && containsModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod of github.com/aws-ipv6-ccm/aws-ipv6-ccm) not found above the working directory")
		}
		dir = parent
	}
}

func containsModule(gomod []byte) bool {
	const want = "module github.com/aws-ipv6-ccm/aws-ipv6-ccm\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// Start brings up etcd, kube-apiserver and ec2sim, applies the shipped
// ServiceAccount and RBAC, and mints the CCM's kubeconfig. On error,
// everything already started is stopped.
func Start(ctx context.Context, opts Options) (w *World, err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	w = &World{Root: root, Bin: filepath.Join(root, "_output", "bin"), opts: opts}
	if opts.Log == nil {
		w.opts.Log = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			w.Close()
			w = nil
		}
	}()
	for _, b := range []string{"etcd", "kube-apiserver", "aws-cloud-controller-manager"} {
		if _, err := os.Stat(filepath.Join(w.Bin, b)); err != nil {
			return w, fmt.Errorf("%s not built (run `make build tools`): %w", b, err)
		}
	}
	w.Dir = opts.Dir
	if w.Dir == "" {
		if w.Dir, err = os.MkdirTemp("", "aws-ipv6-ccm-world-"); err != nil {
			return w, err
		}
		w.ownDir = true
	}
	if opts.Scenario == nil {
		return w, errors.New("harness: Options.Scenario is required")
	}
	w.logf("starting ec2sim")
	policy, err := os.ReadFile(filepath.Join(root, "manifests", "iam", "policy.json"))
	if err != nil {
		return w, err
	}
	simOpts := ec2sim.Options{Scenario: opts.Scenario, Policy: policy, Throttling: opts.Throttling, IMDSAddr: opts.IMDSAddr}
	if opts.IPv6Only {
		simOpts.Addr = "[::1]:0"
	}
	w.Sim, err = ec2sim.Start(simOpts)
	if err != nil {
		return w, fmt.Errorf("start ec2sim: %w", err)
	}
	w.closers = append(w.closers, w.Sim.Close)
	if err := w.startEtcd(ctx); err != nil {
		return w, err
	}
	if err := w.startAPIServer(ctx); err != nil {
		return w, err
	}
	if err := w.applyRBAC(ctx); err != nil {
		return w, err
	}
	if w.CCMKubeconfig, err = w.serviceAccountKubeconfig(ctx, "kube-system", "cloud-controller-manager"); err != nil {
		return w, err
	}
	return w, nil
}

func (w *World) logf(format string, args ...any) { w.opts.Log(format, args...) }

// Close stops every process (CCMs first) and removes the world's directory.
func (w *World) Close() {
	w.mu.Lock()
	procs := w.procs
	w.procs = nil
	w.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(10 * time.Second)
	}
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
	if w.ownDir && w.Dir != "" {
		_ = os.RemoveAll(w.Dir)
	}
}

// start runs a binary from _output/bin in its own process group.
func (w *World) start(name, bin string, args []string, env []string) (*Proc, error) {
	logPath := filepath.Join(w.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(w.Bin, bin), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
	return p, nil
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) { return freePort("127.0.0.1") }

// host is the loopback address every process of the world listens on.
func (w *World) host() string {
	if w.opts.IPv6Only {
		return "::1"
	}
	return "127.0.0.1"
}

// url returns scheme://host:port on the world's loopback address.
func (w *World) url(scheme string, port int) string {
	return scheme + "://" + net.JoinHostPort(w.host(), strconv.Itoa(port))
}

// freePort returns a free TCP port on host.
func (w *World) freePort() (int, error) { return freePort(w.host()) }

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (w *World) startEtcd(ctx context.Context) error {
	cport, err := w.freePort()
	if err != nil {
		return err
	}
	pport, err := w.freePort()
	if err != nil {
		return err
	}
	client := w.url("http", cport)
	peer := w.url("http", pport)
	w.logf("starting etcd on %s", client)
	p, err := w.start("etcd", "etcd", []string{
		"--name=e2e", "--data-dir=" + filepath.Join(w.Dir, "etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=e2e=" + peer, "--unsafe-no-fsync", "--log-level=warn",
	}, nil)
	if err != nil {
		return err
	}
	w.etcdURL = client
	return waitHTTP(ctx, p, client+"/health", nil, 60*time.Second)
}

// waitHTTP polls url until it answers 200 or the process exits.
func waitHTTP(ctx context.Context, p *Proc, url string, hdr http.Header, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready; log %s:\n%s", p.Name, p.LogPath, tail(p.Log(), 3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s; log %s:\n%s", p.Name, url, timeout, p.LogPath, tail(p.Log(), 3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeSigningKey writes an RSA key pair for service-account tokens.
func writeSigningKey(dir string) (priv, pub string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	privDER := x509.MarshalPKCS1PrivateKey(key)
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	priv, pub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	return priv, pub, os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}
