package main

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// static holds the page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed static
var static embed.FS

// sdkFile is the official browser bundle of leancloud-realtime; it exposes
// window.AV. It is not part of this repository.
const sdkFile = "im-browser.min.js"

// sdkCDN is where a user's browser gets the bundle when no local copy is
// found. The version is pinned: it is the one the hub is tested against.
const sdkCDN = "https://cdn.jsdelivr.net/npm/leancloud-realtime@5.0.0-rc.8/dist/"

// sdkSearch lists where the bundle is looked for, relative to the working
// directory, when -sdk-dir is not given (npm installs of the e2e tests and
// of the app itself).
var sdkSearch = []string{
	"e2e/node_modules/leancloud-realtime/dist",
	"node_modules/leancloud-realtime/dist",
}

// findSDK returns the path of a local im-browser.min.js, or "" when there is
// none and the page should load it from the CDN. A dir given explicitly must
// hold the bundle (directly or in its dist/ folder).
func findSDK(dir string) (string, error) {
	if dir != "" {
		for _, p := range []string{filepath.Join(dir, sdkFile), filepath.Join(dir, "dist", sdkFile)} {
			if isFile(p) {
				return p, nil
			}
		}
		return "", fmt.Errorf("-sdk-dir %s: no %s there", dir, sdkFile)
	}
	for _, d := range sdkSearch {
		if p := filepath.Join(d, sdkFile); isFile(p) {
			return p, nil
		}
	}
	return "", nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// pageConfig is what the page needs to start the SDK, served as
// /config.json. Both values are public: LeanCloud app keys are client keys.
type pageConfig struct {
	AppID  string `json:"appId"`
	AppKey string `json:"appKey"`
}

// newRouter mounts the hub at /im beside the app's own routes. sdkPath is a
// local bundle to serve, or "" to redirect to the CDN.
func newRouter(im http.Handler, cfg pageConfig, sdkPath string) http.Handler {
	page, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer)

	r.Mount("/im", im)

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	r.Get("/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(cfg)
	})
	r.Get("/sdk/{file}", sdkHandler(sdkPath))

	files := http.FileServerFS(page)
	r.Get("/*", func(w http.ResponseWriter, req *http.Request) {
		// The page changes with the binary; make browsers revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, req)
	})
	return r
}

// sdkHandler serves the bundle and its source map from the local dist
// folder, or redirects to the pinned CDN copy.
func sdkHandler(sdkPath string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		name := chi.URLParam(req, "file")
		if name != sdkFile && name != sdkFile+".map" {
			http.NotFound(w, req)
			return
		}
		if sdkPath == "" {
			http.Redirect(w, req, sdkCDN+name, http.StatusFound)
			return
		}
		p := filepath.Join(filepath.Dir(sdkPath), name)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			http.NotFound(w, req)
			return
		}
		http.ServeFile(w, req, p)
	}
}
