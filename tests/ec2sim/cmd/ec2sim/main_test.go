package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("EC2SIM_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBinary runs this test binary as ec2sim, reads the banner and stops
// it with SIGTERM.
func TestBinary(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--scenario", "../../testdata/demo.yaml", "--listen", "127.0.0.1:0", "--throttling",
		"--policy", "../../../../manifests/iam/policy.json")
	if _, err := os.Stat("../../../../manifests/iam/policy.json"); err != nil {
		cmd.Args = cmd.Args[:len(cmd.Args)-2]
	}
	cmd.Env = append(os.Environ(), "EC2SIM_RUN_MAIN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read banner: %v", err)
	}
	re := regexp.MustCompile(`^ec2sim listening endpoint=http://127\.0\.0\.1:\d+ ipv6=http://\[::1\]:\d+ region=eu-west-1\n$`)
	if !re.MatchString(line) {
		t.Errorf("banner = %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestBinaryIPv6Only starts the binary on [::1] only, with an IMDS-only
// listener, and checks the banner.
func TestBinaryIPv6Only(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--scenario", "../../testdata/demo.yaml", "--listen", "[::1]:0", "--imds-listen", "[::1]:0")
	cmd.Env = append(os.Environ(), "EC2SIM_RUN_MAIN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read banner: %v", err)
	}
	re := regexp.MustCompile(`^ec2sim listening endpoint=http://\[::1\]:(\d+) ipv6=http://\[::1\]:(\d+) imds=http://\[::1\]:\d+ region=eu-west-1\n$`)
	if m := re.FindStringSubmatch(line); m == nil || m[1] != m[2] {
		t.Errorf("banner = %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
