/* The Vary (Region) mask editor: rectangles and lassos over the image, rasterised at the
 * image's natural size (black = keep, white = repaint) as a PNG data URI.
 *
 * Used twice: inside the playground's dialog (app.js creates a MaskEditor) and alone as the
 * Telegram Mini App page /mask?ref=... (the boot code at the bottom). No dependencies.
 */
"use strict";

(function () {
  const STRINGS = {
    en: {
      title: "Vary (Region)",
      hint: "Mark the parts to repaint: drag a rectangle, or draw around them with the lasso.",
      rect: "Rectangle",
      lasso: "Lasso",
      undo: "Undo",
      clear: "Clear",
      prompt: "Prompt for the repainted area",
      submit: "Submit",
      cancel: "Cancel",
      loading: "Loading the image…",
      failed: "The image could not be loaded.",
      sending: "Sending…",
      sent: "Sent! The result will arrive in the chat.",
      error: "Sending failed: ",
      empty: "Draw at least one area first.",
      missing: "This link is missing its task reference.",
    },
    zh: {
      title: "局部重绘",
      hint: "标出要重绘的部分：拖出一个矩形，或用套索圈出区域。",
      rect: "矩形",
      lasso: "套索",
      undo: "撤销",
      clear: "清除",
      prompt: "重绘区域的提示词",
      submit: "提交",
      cancel: "取消",
      loading: "正在加载图片…",
      failed: "图片加载失败。",
      sending: "正在发送…",
      sent: "已发送！结果会出现在聊天中。",
      error: "发送失败：",
      empty: "请先至少画出一个区域。",
      missing: "这个链接缺少任务编号。",
    },
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  class MaskEditor {
    /**
     * @param {HTMLElement} root where the editor is built
     * @param {{imageUrl: string, initData?: string, prompt?: string, lang?: string, title?: string,
     *          onSubmit: (maskPng: string, prompt: string) => Promise<void>,
     *          onCancel?: () => void}} options
     */
    constructor(root, options) {
      this.root = root;
      this.options = options;
      this.lang = STRINGS[options.lang] ? options.lang : "en";
      this.s = STRINGS[this.lang];
      this.shapes = []; // in natural image pixels: {type: "rect", x, y, w, h} | {type: "lasso", points}
      this.tool = "rect";
      this.drawing = null;
      this.width = 0;
      this.height = 0;
      this.build();
      this.load(options.imageUrl);
    }

    build() {
      const s = this.s;
      this.root.textContent = "";
      this.root.classList.add("mask-editor");
      this.rectButton = el("button", {
        type: "button", class: "tool active", "data-tool": "rect", "aria-pressed": "true",
        text: "▭ " + s.rect, onclick: () => this.setTool("rect"),
      });
      this.lassoButton = el("button", {
        type: "button", class: "tool", "data-tool": "lasso", "aria-pressed": "false",
        text: "➰ " + s.lasso, onclick: () => this.setTool("lasso"),
      });
      this.undoButton = el("button", {
        type: "button", class: "tool", "data-action": "undo", text: "↶ " + s.undo,
        onclick: () => this.undo(),
      });
      this.clearButton = el("button", {
        type: "button", class: "tool", "data-action": "clear", text: "✕ " + s.clear,
        onclick: () => this.clear(),
      });
      const toolbar = el("div", { class: "mask-toolbar", role: "toolbar" }, [
        this.rectButton, this.lassoButton, this.undoButton, this.clearButton,
      ]);
      this.image = el("img", { class: "mask-image", alt: "", draggable: "false" });
      this.canvas = el("canvas", { class: "mask-canvas", "aria-label": s.hint });
      this.status = el("div", { class: "mask-status", text: s.loading });
      this.stage = el("div", { class: "mask-stage" }, [this.image, this.canvas, this.status]);
      this.promptBox = el("textarea", {
        class: "mask-prompt", rows: "2", placeholder: s.prompt, "aria-label": s.prompt,
      });
      this.promptBox.value = this.options.prompt || "";
      this.submitButton = el("button", {
        type: "button", class: "primary", "data-action": "submit", text: s.submit,
        onclick: () => this.submit(),
      });
      const actions = el("div", { class: "mask-actions" }, []);
      if (this.options.onCancel) {
        actions.append(el("button", {
          type: "button", "data-action": "cancel", text: s.cancel,
          onclick: () => this.options.onCancel(),
        }));
      }
      actions.append(this.submitButton);
      this.message = el("div", { class: "mask-message", role: "status" });
      this.root.append(
        el("h2", { class: "mask-title", text: this.options.title || s.title }),
        el("p", { class: "mask-hint", text: s.hint }),
        toolbar,
        this.stage,
        el("label", { class: "mask-label", text: s.prompt }, [this.promptBox]),
        this.message,
        actions,
      );
      const c = this.canvas;
      c.addEventListener("pointerdown", (e) => this.down(e));
      c.addEventListener("pointermove", (e) => this.move(e));
      c.addEventListener("pointerup", (e) => this.up(e));
      c.addEventListener("pointercancel", () => { this.drawing = null; this.paint(); });
      this.refresh();
    }

    load(url) {
      this.image.addEventListener("load", () => {
        this.width = this.image.naturalWidth;
        this.height = this.image.naturalHeight;
        this.canvas.width = this.width;
        this.canvas.height = this.height;
        this.stage.style.aspectRatio = `${this.width} / ${this.height}`;
        // Fit the height too (phones): never stretch the image, whatever the screen.
        this.stage.style.width = `min(100%, calc(62dvh * ${this.width / this.height}))`;
        this.status.hidden = true;
        this.root.dataset.ready = "true";
        this.paint();
        this.refresh();
      });
      this.image.addEventListener("error", () => {
        this.status.textContent = this.s.failed;
        this.status.classList.add("error");
      });
      if (!this.options.initData) {
        this.image.src = url; // the playground: its cookie proves who asks
        return;
      }
      // The Mini App: only the task's owner may see the image, proven by Telegram's initData.
      fetch(url, { headers: { Authorization: `tma ${this.options.initData}` } })
        .then((response) => {
          if (!response.ok) throw new Error(response.statusText);
          return response.blob();
        })
        .then((blob) => { this.image.src = URL.createObjectURL(blob); })
        .catch(() => this.image.dispatchEvent(new Event("error")));
    }

    setTool(tool) {
      this.tool = tool;
      for (const button of [this.rectButton, this.lassoButton]) {
        const on = button.dataset.tool === tool;
        button.classList.toggle("active", on);
        button.setAttribute("aria-pressed", String(on));
      }
    }

    point(e) {
      const box = this.canvas.getBoundingClientRect();
      const x = ((e.clientX - box.left) * this.width) / box.width;
      const y = ((e.clientY - box.top) * this.height) / box.height;
      return [Math.max(0, Math.min(this.width, x)), Math.max(0, Math.min(this.height, y))];
    }

    down(e) {
      if (!this.width || e.button > 0) return;
      e.preventDefault();
      this.canvas.setPointerCapture?.(e.pointerId);
      const [x, y] = this.point(e);
      this.drawing = this.tool === "rect"
        ? { type: "rect", x0: x, y0: y, x1: x, y1: y }
        : { type: "lasso", points: [[x, y]] };
      this.paint();
    }

    move(e) {
      const d = this.drawing;
      if (!d) return;
      e.preventDefault();
      const [x, y] = this.point(e);
      if (d.type === "rect") {
        d.x1 = x;
        d.y1 = y;
      } else {
        const [lx, ly] = d.points[d.points.length - 1];
        const minStep = (2 * this.width) / this.canvas.getBoundingClientRect().width;
        if (Math.hypot(x - lx, y - ly) >= minStep) d.points.push([x, y]);
      }
      this.paint();
    }

    up(e) {
      const d = this.drawing;
      if (!d) return;
      this.move(e);
      this.drawing = null;
      const minSize = this.width / 100;
      if (d.type === "rect") {
        const shape = {
          type: "rect",
          x: Math.round(Math.min(d.x0, d.x1)),
          y: Math.round(Math.min(d.y0, d.y1)),
          w: Math.round(Math.abs(d.x1 - d.x0)),
          h: Math.round(Math.abs(d.y1 - d.y0)),
        };
        if (shape.w >= minSize && shape.h >= minSize) this.shapes.push(shape);
      } else if (d.points.length >= 3) {
        this.shapes.push({ type: "lasso", points: d.points.map(([x, y]) => [Math.round(x), Math.round(y)]) });
      }
      this.paint();
      this.refresh();
    }

    undo() {
      this.shapes.pop();
      this.paint();
      this.refresh();
    }

    clear() {
      this.shapes = [];
      this.paint();
      this.refresh();
    }

    refresh() {
      const none = this.shapes.length === 0;
      this.undoButton.disabled = none;
      this.clearButton.disabled = none;
      this.submitButton.disabled = none || !this.width;
      this.root.dataset.shapes = String(this.shapes.length);
    }

    trace(g, shape) {
      g.beginPath();
      if (shape.type === "rect") {
        g.rect(shape.x, shape.y, shape.w, shape.h);
      } else {
        const [first, ...rest] = shape.points;
        g.moveTo(first[0], first[1]);
        for (const [x, y] of rest) g.lineTo(x, y);
        g.closePath();
      }
    }

    /** The overlay the user sees: translucent areas with a dashed outline. */
    paint() {
      const g = this.canvas.getContext("2d");
      if (!g || !this.width) return;
      g.clearRect(0, 0, this.width, this.height);
      const line = Math.max(2, this.width / 300);
      const shapes = [...this.shapes];
      const d = this.drawing;
      if (d && d.type === "rect") {
        shapes.push({
          type: "rect", x: Math.min(d.x0, d.x1), y: Math.min(d.y0, d.y1),
          w: Math.abs(d.x1 - d.x0), h: Math.abs(d.y1 - d.y0),
        });
      } else if (d && d.points.length > 1) {
        shapes.push({ type: "lasso", points: d.points });
      }
      for (const shape of shapes) {
        this.trace(g, shape);
        g.fillStyle = "rgba(255, 64, 129, 0.35)";
        g.fill();
        g.lineWidth = line;
        g.setLineDash([line * 3, line * 2]);
        g.strokeStyle = "#ffffff";
        g.stroke();
      }
    }

    /** The mask the API wants: the image's size, black background, white where to repaint. */
    toDataURL() {
      const c = document.createElement("canvas");
      c.width = this.width;
      c.height = this.height;
      const g = c.getContext("2d");
      g.fillStyle = "#000000";
      g.fillRect(0, 0, this.width, this.height);
      g.fillStyle = "#ffffff";
      for (const shape of this.shapes) {
        this.trace(g, shape);
        g.fill();
      }
      return c.toDataURL("image/png");
    }

    say(text, isError) {
      this.message.textContent = text || "";
      this.message.classList.toggle("error", Boolean(isError));
    }

    async submit() {
      if (!this.shapes.length) {
        this.say(this.s.empty, true);
        return;
      }
      this.submitButton.disabled = true;
      this.say(this.s.sending);
      try {
        await this.options.onSubmit(this.toDataURL(), this.promptBox.value.trim());
        this.say(this.s.sent);
        this.root.dataset.sent = "true";
      } catch (err) {
        this.say(this.s.error + (err && err.message ? err.message : err), true);
        this.submitButton.disabled = false;
      }
    }
  }

  MaskEditor.STRINGS = STRINGS;
  window.MaskEditor = MaskEditor;

  /** Telegram's signed initData, from its script if the page has it, else from the URL. */
  function telegramInitData() {
    const app = window.Telegram && window.Telegram.WebApp;
    if (app && app.initData) return app.initData;
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    return hash.get("tgWebAppData") || query.get("initData") || query.get("tgWebAppData") || "";
  }

  async function postMask(body) {
    const response = await fetch("/api/mask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.text()) || response.statusText);
  }

  MaskEditor.postMask = postMask;

  /** /mask?ref=...: the editor alone (the Telegram Mini App, or a plain browser tab). */
  function standalone() {
    const root = document.getElementById("mask-root");
    const query = new URLSearchParams(location.search);
    const ref = query.get("ref") || "";
    const app = window.Telegram && window.Telegram.WebApp;
    const tgLang = app && app.initDataUnsafe && app.initDataUnsafe.user
      ? app.initDataUnsafe.user.language_code : "";
    const langTag = (query.get("lang") || tgLang || navigator.language || "en").toLowerCase();
    const lang = langTag.startsWith("zh") ? "zh" : "en";
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    if (app) {
      app.ready?.();
      app.expand?.();
    }
    if (!ref) {
      root.textContent = STRINGS[lang].missing;
      return;
    }
    const initData = telegramInitData();
    const session = query.get("session");
    const image = `/api/region/${encodeURIComponent(ref)}/image`;
    const editor = new MaskEditor(root, {
      imageUrl: session ? `${image}?session=${encodeURIComponent(session)}` : image,
      initData,
      prompt: query.get("prompt") || "",
      lang,
      onSubmit: async (maskPng, prompt) => {
        const body = { ref, mask_png: maskPng, prompt, lang };
        if (initData) body.init_data = initData;
        if (session) body.session = session;
        await postMask(body);
        if (app && app.close) setTimeout(() => app.close(), 600);
      },
    });
    window.maskEditor = editor;
  }

  if (document.body && document.body.dataset.page === "mask") {
    standalone();
  } else if (!document.body) {
    document.addEventListener("DOMContentLoaded", () => {
      if (document.body.dataset.page === "mask") standalone();
    });
  }
})();
