package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/netsvc-go/netsvc/service"
)

// The page in a real browser: headless Chromium, driven with chromedp.

// browserWait bounds each wait for the page.
const browserWait = 20 * time.Second

// startBrowser starts headless Chromium with a profile of its own and
// returns a tab's context; the browser stops when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, within a bound. The first action's context
	// owns the browser, so it must be ctx itself, not one with a timeout.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium %s: %v", path, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("chromium %s did not start within a minute", path)
	}
	return ctx
}

// do runs steps with a bound, failing the test with what it was doing.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(wctx, steps...); err != nil {
		shot(t, ctx)
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression, bounded.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(wctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// shot saves a screenshot of the page when NETSVC_SHOTS names a folder:
// at the end of the test, and where it failed.
func shot(t *testing.T, ctx context.Context) {
	dir := os.Getenv("NETSVC_SHOTS")
	if dir == "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if b, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
		name := fmt.Sprintf("%s/%s.png", dir, strings.ReplaceAll(t.Name(), "/", "_"))
		os.WriteFile(name, b, 0o644)
		t.Logf("screenshot in %s", name)
	}
}

func TestBrowserPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	ctx := startBrowser(t)
	p := startPair(t)
	const token = "browser-token"
	c := startConsole(t, Config{Node: p.srv, Token: token})

	// Uncaught errors in the page fail the test.
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	pageErrors := make(chan string, 16)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			select {
			case pageErrors <- msg:
			default:
			}
		}
	}()

	// The page reads the token from its URL and passes it on.
	browse(t, ctx, "load the page", chromedp.Navigate(c.URL()+"?token="+token))
	eval[chromedp.Void](t, ctx, `window.notReloaded = true`)

	// The tree shows the exchange, the client's connection and the
	// services, with kinds as badges.
	browse(t, ctx, "the exchange, a connection and a service in the tree",
		chromedp.WaitVisible(chromedp.CSS(`#tree li[data-kind="exchange"] > .row`)),
		chromedp.WaitVisible(chromedp.CSS(`#tree li[data-kind="connection"] > .row .badge.kind-connection`)),
		chromedp.WaitVisible(chromedp.CSS(`#tree li[data-kind="service"][data-name="math"] > .row`)),
		chromedp.WaitVisible(chromedp.CSS(`#tree li[data-kind="supervisor"] > .row`)),
	)
	conn := eval[string](t, ctx, `document.querySelector('#tree li[data-kind="connection"]').textContent`)
	if !strings.Contains(conn, "cli") {
		t.Errorf("the connection does not name its peer: %q", conn)
	}
	// The services table, the links with their rate chart, live updates.
	browse(t, ctx, "services, links and the live indicator",
		chromedp.WaitVisible(chromedp.CSS(`#services tr[data-service="echo"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#services tr[data-service="math"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#links tr[data-link] canvas`)),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)),
	)
	row := eval[string](t, ctx, `document.querySelector('#services tr[data-service="math"]').textContent`)
	for _, want := range []string{"web", "srv", "local", "*"} {
		if !strings.Contains(row, want) {
			t.Errorf("the services table's math row lacks %q: %q", want, row)
		}
	}
	if h := eval[string](t, ctx, `document.getElementById("node-name").textContent`); h != "srv" {
		t.Errorf("the header names %q", h)
	}

	// Expand a collapsed node: math's child actor shows.
	worker := `#tree li[data-kind="actor"][data-name="worker"] > .row`
	browse(t, ctx, "math starts collapsed", chromedp.WaitNotVisible(chromedp.CSS(worker)))
	browse(t, ctx, "expand math",
		chromedp.Click(chromedp.CSS(`#tree li[data-name="math"] > .row > button.toggle`)),
		chromedp.WaitVisible(chromedp.CSS(worker)),
	)
	if v := eval[string](t, ctx, `document.querySelector('#tree li[data-name="math"] > .row > button.toggle').getAttribute("aria-expanded")`); v != "true" {
		t.Errorf("aria-expanded = %q after expanding", v)
	}
	// And collapse the exchange: its connection hides.
	browse(t, ctx, "collapse the exchange",
		chromedp.Click(chromedp.CSS(`#tree li[data-kind="exchange"] > .row > button.toggle`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#tree li[data-kind="connection"] > .row`)),
	)

	// A service started now appears without a reload, told by the event
	// stream.
	if _, err := p.srv.Runtime().Start(context.Background(), "fresh", service.SetupFunc(func(a *service.Agent) error {
		a.Export("boom", func() int { panic("boom") })
		return nil
	}), service.Groups("late-group"), service.OnPanic(service.RestartOnPanic)); err != nil {
		t.Fatal(err)
	}
	browse(t, ctx, "the new service shows",
		chromedp.WaitVisible(chromedp.CSS(`#tree li[data-kind="service"][data-name="fresh"] > .row`)),
		chromedp.WaitVisible(chromedp.CSS(`#services tr[data-service="fresh"]`)),
	)
	if !eval[bool](t, ctx, `document.getElementById("events").textContent.includes("fresh")`) {
		t.Error("the event log does not show the new service")
	}
	// A restart after a panic shows in the tree.
	if _, err := p.srv.Runtime().Call(context.Background(), service.Name("fresh"), "boom"); err == nil {
		t.Fatal("boom did not fail")
	}
	browse(t, ctx, "the restart shows in the tree",
		chromedp.Poll[chromedp.Void](`document.querySelector('#tree li[data-name="fresh"]')?.textContent.includes("restarts 1")`,
			chromedp.WithPollingTimeout(10*time.Second)))
	// The choices made survive the refreshes.
	browse(t, ctx, "math stays open, the exchange closed",
		chromedp.WaitVisible(chromedp.CSS(worker)),
		chromedp.WaitNotVisible(chromedp.CSS(`#tree li[data-kind="connection"] > .row`)),
	)

	// Call a service from the page, through the gateway.
	browse(t, ctx, "call math.multiply",
		chromedp.SetValue(chromedp.ID("call-service"), "math"),
		chromedp.SetValue(chromedp.ID("call-method"), "multiply"),
		chromedp.SetValue(chromedp.ID("call-args"), "[6, 7]"),
		chromedp.Click(chromedp.CSS(`#call-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#call-result.ok`)),
	)
	if res := eval[string](t, ctx, `document.getElementById("call-result").textContent`); !strings.HasPrefix(res, "42") {
		t.Errorf("call result: %q", res)
	}
	browse(t, ctx, "a failing call",
		chromedp.SetValue(chromedp.ID("call-method"), "divide"),
		chromedp.Click(chromedp.CSS(`#call-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#call-result.bad`)),
	)
	if res := eval[string](t, ctx, `document.getElementById("call-result").textContent`); !strings.Contains(res, "55 no such method") {
		t.Errorf("failed call result: %q", res)
	}

	// With a link, services and members shown: nothing clipped at the
	// widths users have (element bounds, not pixels).
	noTableClipped(t, ctx)

	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page reloaded")
	}
	if el := eval[bool](t, ctx, `document.getElementById("error").hidden`); !el {
		t.Errorf("the page shows an error: %q", eval[string](t, ctx, `document.getElementById("error").textContent`))
	}
	select {
	case msg := <-pageErrors:
		t.Errorf("uncaught error in the page: %s", msg)
	default:
	}
	shot(t, ctx)
}

// noTableClipped checks, at the widths users have (1280 and 1920 px),
// that no table is wider than its card: element bounds, not pixels.
func noTableClipped(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, w := range []int64{1280, 1920} {
		browse(t, ctx, fmt.Sprint("resize to ", w), chromedp.EmulateViewport(w, 900))
		clipped := eval[[]string](t, ctx, `[...document.querySelectorAll(".scroll")].filter(s => s.offsetParent && s.scrollWidth > s.clientWidth + 1).map(s => s.querySelector("table").id + " " + s.scrollWidth + ">" + s.clientWidth)`)
		if len(clipped) > 0 {
			shot(t, ctx)
			t.Errorf("at %d px these tables are clipped: %v", w, clipped)
		}
	}
}
