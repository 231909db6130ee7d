package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// browser starts headless Chromium (Debian's chromium, which scripts/services.sh installs)
// and returns a context of it; each tab opened with tab has a browser context of its own,
// so buyers do not share storage.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the page tests need Chromium: run scripts/services.sh (it installs Debian's chromium), or apt-get install chromium")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		// This machine's network is closed: Chromium must not try to reach Google.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"), // the English texts, whatever the machine's locale
		chromedp.WindowSize(1100, 900))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func tab(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first run: this one, not a step's.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// do runs steps in tab ctx, failing the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in tab ctx.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript expression to be true in tab ctx.
func until(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		// What the page showed then, to tell why.
		d, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(d, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v; the page said:\n%s", what, expr, err, text)
	}
}

// screenshot saves the whole page of tab ctx as run/screenshots/name.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(suite.Root(), "run", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signInBuyer opens the buyer page in tab ctx and signs in as name, by keyboard (the dev
// login: type the name, press Enter). The tab's clock is wrong by skew: the page must go
// by the server's.
func signInBuyer(t *testing.T, ctx context.Context, url, name string, skew time.Duration) {
	t.Helper()
	if skew != 0 {
		src := fmt.Sprintf(`{ const now = Date.now; Date.now = () => now() + %d; }`, skew.Milliseconds())
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, "open the buyer page as "+name,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#dev-name")),
		chromedp.Focus(chromedp.CSS("#dev-name")),
		chromedp.SendKeys(chromedp.CSS("#dev-name"), name+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#who")),
	)
	if got := eval[string](t, ctx, `document.querySelector("#who-name").textContent`); got != name {
		t.Fatalf("signed in as %q, want %q", got, name)
	}
}

// TestPages is the whole story of the original, by hand in a browser: the shop signs in
// and creates a commodity of one unit starting in 3 s; buyer A's page counts down, its Buy
// button enables at the start, A buys and pays; buyer B's page sees the unit go without a
// reload and is told "sold out"; the shop's list shows it sold and paid.
func TestPages(t *testing.T) {
	b := browser(t)
	// The commodity requires a ticket, with a proof of work: the page gets one and does it.
	s := suite.New(t, []string{"SECBUY_DEV_LOGIN=1", "SECBUY_TICKET_POW_BITS=8"})
	order, stock := s.URL("order-web"), s.URL("stock-web")

	// The buyers are on the page before the commodity exists: it appears by itself.
	a, bb := tab(t, b), tab(t, b)
	signInBuyer(t, a, order, "alice", 5*time.Minute) // A's computer is five minutes fast
	signInBuyer(t, bb, order, "bob", 0)
	// B reads Chinese: the switch, kept for the session.
	do(t, bb, "switch B to Chinese", chromedp.Click(chromedp.CSS("#lang")))
	if got := eval[string](t, bb, `document.querySelector("#list-h").textContent`); got != "正在秒杀与即将开始" {
		t.Fatalf("B's heading after the switch = %q", got)
	}
	eval[bool](t, bb, `window.notReloaded = true`)

	// The shop: sign in with the admin key, create one unit starting 3 s from now (once
	// stock-srv answers: a create refused "busy" is not resent by the page).
	if err := suite.Eventually(20*time.Second, func() error {
		rsp, err := http.Get(stock + "/stock/list")
		if err != nil {
			return err
		}
		rsp.Body.Close()
		if rsp.StatusCode != 200 {
			return fmt.Errorf("stock list: %d", rsp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	admin := tab(t, b)
	do(t, admin, "admin sign-in",
		chromedp.Navigate(stock+"/admin"),
		chromedp.WaitVisible(chromedp.CSS("#admin-key")),
		chromedp.SendKeys(chromedp.CSS("#admin-key"), suite.AdminKey),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#c-name")),
	)
	// A field the server refuses is shown next to the field: a negative count.
	do(t, admin, "create with a bad count",
		chromedp.SetValue(chromedp.CSS("#c-name"), "秒杀球鞋"),
		chromedp.SetValue(chromedp.CSS("#c-count"), "-1"),
		chromedp.Click(chromedp.CSS("#create")),
	)
	until(t, admin, "the count's error", `document.querySelector("#err-count").textContent.trim() !== ""`, 5*time.Second)
	start := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	local := start.Local().Format("2006-01-02T15:04:05")
	do(t, admin, "create one unit starting in 3 s, buyers need a ticket",
		chromedp.SetValue(chromedp.CSS("#c-count"), "1"),
		chromedp.SetValue(chromedp.CSS("#c-start"), local),
		chromedp.Click(chromedp.CSS("#c-ticket")),
		chromedp.Click(chromedp.CSS("#create")),
	)
	until(t, admin, "the created message", `/#\d+/.test(document.querySelector("#create-msg").textContent)`, 5*time.Second)
	msg := eval[string](t, admin, `document.querySelector("#create-msg").textContent`)
	id, err := strconv.ParseInt(regexp.MustCompile(`#(\d+)`).FindStringSubmatch(msg)[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, admin, `document.querySelector("#err-count").textContent.trim()`); got != "" {
		t.Errorf("the count's error is still shown after a good create: %q", got)
	}
	card := fmt.Sprintf(`document.querySelector('li[data-id="%d"]')`, id)

	// A: the card appears with a countdown and a disabled button, before the start.
	until(t, a, "the new commodity on A's page", card+` !== null`, 3*time.Second)
	if time.Now().After(start) {
		t.Fatalf("the card appeared only after the start; the countdown could not be seen")
	}
	phase := eval[string](t, a, card+`.dataset.phase + "|" + `+card+`.querySelector(".buy").disabled + "|" + `+card+`.querySelector(".countdown").textContent`)
	if !strings.HasPrefix(phase, "before|true|Starts in 00:00:0") {
		t.Fatalf("A's card before the start = %q; want a countdown and a disabled button", phase)
	}
	screenshot(t, a, "buyer-countdown")
	// The button enables at the start instant by the server's clock (the page's own is five
	// minutes off): the page notes the moment by the real clock.
	eval[bool](t, a, `(() => { const b = `+card+`.querySelector(".buy");
		new MutationObserver(() => { if (!b.disabled && !window.enabledAt) window.enabledAt = performance.timeOrigin + performance.now(); })
			.observe(b, { attributes: true, attributeFilter: ["disabled"] });
		return true; })()`)
	until(t, a, "A's Buy button enabled", `window.enabledAt > 0`, 6*time.Second)
	enabled := time.UnixMilli(int64(eval[float64](t, a, `window.enabledAt`)))
	if off := enabled.Sub(start); off < -150*time.Millisecond || off > 400*time.Millisecond {
		t.Fatalf("Buy enabled %v from the start; want within -150 ms and +400 ms", off)
	}

	// A script that skips the page, and its ticket, is refused and buys nothing.
	var refused struct {
		Error struct{ Reason string } `json:"error"`
	}
	if code, err := load.Do(load.Client(1), "POST", order+"/order/sell", s.Token(999_001), map[string]any{"id": id}, &refused); err != nil ||
		code != 403 || refused.Error.Reason != "TICKET_REQUIRED" {
		t.Fatalf("a press without a ticket: %d %v %v; want 403 TICKET_REQUIRED", code, refused, err)
	}

	// Two presses while the first is in flight are one: count the Idempotency-Keys the page
	// sends (the button is disabled by the first click; the second is forced through), and
	// see it send the ticket it got, with its proof of work.
	eval[bool](t, a, `(() => { window.sellKeys = new Set(); window.tickets = 0; window.sentTicket = false; const f = window.fetch;
		window.fetch = (u, o) => {
			if (String(u).includes("/order/ticket")) window.tickets++;
			if (String(u).includes("/order/sell")) { window.sellKeys.add(o.headers["Idempotency-Key"]); const b = JSON.parse(o.body); window.sentTicket = !!b.ticket && b.nonce !== ""; }
			return f(u, o); };
		const b = `+card+`.querySelector(".buy"); b.click(); b.disabled = false; b.click();
		return true; })()`)
	until(t, a, "A's order", card+`.dataset.result === "yours"`, 10*time.Second)
	if got := eval[string](t, a, card+`.querySelector(".result").textContent`); !strings.HasPrefix(got, "Yours! Order #") {
		t.Fatalf("A's result = %q", got)
	}
	if n := eval[int](t, a, `window.sellKeys.size`); n != 1 {
		t.Fatalf("a double-click sent %d presses, want 1", n)
	}
	if n, sent := eval[int](t, a, `window.tickets`), eval[bool](t, a, `window.sentTicket`); n != 1 || !sent {
		t.Fatalf("the page got %d tickets and sent a solved one: %v; want 1 and true", n, sent)
	}

	// A pays from "my orders".
	until(t, a, "A's Pay button", `(() => { const b = document.querySelector("#orders li .pay"); return b !== null && !b.hidden; })()`, 10*time.Second)
	do(t, a, "A pays", chromedp.Click(chromedp.CSS("#orders li .pay")))
	until(t, a, "A's order paid", `document.querySelector("#orders li").dataset.state === "paid"`, 10*time.Second)
	if got := eval[string](t, a, `document.querySelector("#orders li .ostate").textContent`); got != "paid" {
		t.Fatalf("A's order state = %q", got)
	}
	screenshot(t, a, "buyer")

	// B: the unit is gone without a reload; a press is told "sold out", in Chinese.
	until(t, bb, "units left 0 on B's page", card+` !== null && `+card+`.dataset.left === "0"`, 3*time.Second)
	if !eval[bool](t, bb, `window.notReloaded === true`) {
		t.Fatal("B's page was reloaded")
	}
	do(t, bb, "B presses Buy", chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-id="%d"] .buy`, id))))
	until(t, bb, "B told sold out", card+`.dataset.result === "SOLD_OUT"`, 10*time.Second)
	if got := eval[string](t, bb, card+`.querySelector(".result").textContent`); got != "已售罄" {
		t.Fatalf("B's result = %q, want 已售罄", got)
	}
	screenshot(t, bb, "buyer-soldout")

	// The shop's list: sold 1, orders 1 (none pending), paid 1 (none unpaid).
	row := fmt.Sprintf(`document.querySelector('tr[data-id="%d"]')`, id)
	cell := func(class, want string) string {
		return ` && ` + row + `.querySelector(".` + class + `").textContent === "` + want + `"`
	}
	until(t, admin, "sold 1, orders 1 and paid 1 on the admin list",
		row+` !== null`+cell("sold", "1")+cell("orders", "1")+cell("pending", "0")+cell("paid", "1")+cell("unpaid", "0"), 10*time.Second)
	screenshot(t, admin, "admin")

	// A phone-width screen: nothing wider than the screen.
	do(t, bb, "phone width", chromedp.EmulateViewport(390, 844))
	if wide := eval[bool](t, bb, `document.documentElement.scrollWidth > window.innerWidth`); wide {
		t.Error("the buyer page is wider than a phone's screen")
	}
	screenshot(t, bb, "buyer-phone")

	// The invariants, from the services themselves.
	au, err := load.NewAuditor(s.NATSURL).Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if au.Sale != 1 || au.Live != 1 || au.Paid != 1 || au.TwoLive != 0 {
		t.Fatalf("audit after the story: %+v; want one unit sold, one order, paid", au)
	}
	if v := au.Violations(true); len(v) > 0 {
		t.Fatalf("invariants: %v", v)
	}
}
