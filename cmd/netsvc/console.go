package main

// Reading a node's console JSON API, for the commands that ask a console
// instead of linking.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// consoleGet fetches path (such as "/api/services") from a node's
// console at base, a URL or a bare HOST:PORT, and decodes the JSON
// answer into v. A token, when set, is sent as a bearer token; when the
// console refuses it, the error says where it came from.
func consoleGet(ctx context.Context, base, path string, token settingValue, timeout time.Duration, v any) error {
	u, err := consoleURL(base, path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if token.isSet() {
		req.Header.Set("Authorization", "Bearer "+token.get())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error // the console's JSON error
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if resp.StatusCode == http.StatusUnauthorized {
			if token.isSet() {
				msg += " (console token " + token.from() + ")"
			} else {
				msg += " (no console token given: set " + consoleTokenSetting.sources() + ")"
			}
		}
		if msg != "" {
			return fmt.Errorf("GET %s: %s: %s", u, resp.Status, msg)
		}
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: the answer is not the expected JSON: %w", u, err)
	}
	return nil
}

// consoleURL joins the console's base URL and an API path.
func consoleURL(base, path string) (string, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--console %q: want a URL like http://127.0.0.1:8080", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String(), nil
}
