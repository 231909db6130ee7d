package suite

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL cluster for one test, on a free loopback port with trust
// authentication, so that a test can stop, crash and restart its database server without
// touching the machine's shared one. Its data lives in a temporary directory removed when
// the test ends.
type Postgres struct {
	t       testing.TB
	bin     string // directory of initdb, pg_ctl, postgres
	dir     string // the temporary directory: data/ and postgres.log
	data    string
	Port    int
	asUser  string // the OS user that runs the server ("" for ourselves)
	pass    string // the postgres user's password, once RequirePassword set one
	mu      sync.Mutex
	running bool
}

// pgBinDir finds the server binaries: the newest /usr/lib/postgresql/*/bin (Debian/Ubuntu),
// else the directory of initdb on PATH.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres creates a private cluster (initdb) and starts it. It fails the test, saying
// what to install, when no PostgreSQL server binaries are there. As root it runs the server as the postgres OS
// user, since initdb and postgres refuse to run as root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		t.Fatalf("a private PostgreSQL cluster is needed (apt-get install postgresql; `make services` does): %v", err)
	}
	p := &Postgres{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "secbuy-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		p.Stop("immediate")
		_ = os.RemoveAll(dir)
	})
	p.data = filepath.Join(dir, "data")
	if err := os.Mkdir(p.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres OS user to run a private PostgreSQL cluster (apt-get install postgresql creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The server user must reach its data directory and write its log beside it.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dir, p.data} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		p.asUser = "postgres"
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p.Port, _ = strconv.Atoi(port)

	if out, err := p.run(2*time.Minute, "initdb", "-D", p.data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Loopback only, on our port, no unix socket (the shared server's socket directory is
	// not ours to use), and enough connections for six services' pools.
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\n"+
		"max_connections = 200\nshared_buffers = 64MB\n", p.Port)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	return p
}

// run runs one of the server binaries, as the server's OS user, with a time limit.
func (p *Postgres) run(limit time.Duration, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	path := filepath.Join(p.bin, tool)
	var cmd *exec.Cmd
	switch {
	case p.asUser == "":
		cmd = exec.CommandContext(ctx, path, args...)
	case haveRunuser():
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	default:
		quoted := make([]string, 0, len(args)+1)
		for _, a := range append([]string{path}, args...) {
			quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		cmd = exec.CommandContext(ctx, "su", p.asUser, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func haveRunuser() bool {
	_, err := exec.LookPath("runuser")
	return err == nil
}

// URL returns the server's URL without a database, like dbtest.ServerURL (with the
// password, if RequirePassword set one).
func (p *Postgres) URL() string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", p.Port)}
	if p.pass != "" {
		u.User = url.UserPassword("postgres", p.pass)
	}
	return u.String()
}

// DatabaseURL returns the URL of database name on the private server (the services create
// it when they start, if it is missing).
func (p *Postgres) DatabaseURL(name string) string { return p.URL() + "/" + name + "?sslmode=disable" }

// Start starts the server (again) and waits until it accepts connections; after a crash
// (Stop("immediate")) this includes its recovery.
func (p *Postgres) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return
	}
	if out, err := p.run(time.Minute, "pg_ctl", "start", "-w", "-t", "50", "-D", p.data,
		"-l", filepath.Join(p.dir, "postgres.log")); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n--- postgres.log ---\n%s", err, out, tail(log, 3000))
	}
	p.running = true
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, p.URL()+"/postgres?sslmode=disable")
		if err == nil {
			_ = c.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			p.t.Fatalf("private postgres on port %d does not answer: %v", p.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server with pg_ctl's mode: "fast" (clean: disconnect everyone, checkpoint)
// or "immediate" (a crash: every process quits at once, recovery runs at the next start).
func (p *Postgres) Stop(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	if out, err := p.run(time.Minute, "pg_ctl", "stop", "-w", "-t", "50", "-m", mode, "-D", p.data); err != nil {
		p.t.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	p.running = false
}

// Log returns the end of the server's log.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	return tail(b, 3000)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
