/* The playground page: a chat over a WebSocket, uploads, dialogs, the admin tab.
 *
 * The server owns every message (the bot's and the user's own); this page only renders the
 * events it is sent ({type: "message" | "edit" | "delete", message}) and sends user actions
 * back ({type: "text" | "press" | "answer" | "lang"}). Plain JS, no build step.
 */
"use strict";

(function () {
  const UI = {
    en: {
      title: "mjbot playground",
      "tab.chat": "Chat",
      "tab.admin": "Admin",
      "input.placeholder": "Type /imagine and a prompt…",
      send: "Send",
      cancel: "Cancel",
      attach: "Attach images",
      drop: "Drop images to attach them",
      remove: "Remove",
      answer: "Answer",
      answered: "Answered",
      "mask.open": "Open the mask editor",
      "ask.files": "Photos",
      "files.hint": "Add a command: /blend, /describe, /swap, /video, /edit or /imagine",
      connected: "connected",
      connecting: "connecting…",
      offline: "offline, reconnecting…",
      edited: "edited",
      "upload.failed": "Upload failed: ",
      "admin.chart": "Tasks per 10 minutes (last 6 hours)",
      "admin.health": "Health",
      "admin.in_flight": "Tasks in flight",
      "admin.recent": "Recent tasks",
      "admin.usage": "Usage per user today",
      "admin.empty": "Nothing yet",
      "admin.error": "The admin data could not be loaded.",
      "col.task": "Task",
      "col.kind": "Kind",
      "col.status": "Status",
      "col.progress": "Progress",
      "col.user": "User",
      "col.prompt": "Prompt",
      "col.created": "Created",
      "col.finished": "Finished",
      "col.elapsed": "Elapsed",
      "col.age": "Age",
      "col.tasks": "Tasks",
      "col.succeeded": "Succeeded",
      "col.failed": "Failed",
      "health.api": "Midjourney API",
      "health.url": "API address",
      "health.webhook": "Webhook (notifyHook)",
      "health.polls": "Polls / errors",
      "health.requests": "API requests / errors",
      "health.received": "received",
      "health.rate_limited": "Rate-limit waits",
      "health.sent": "Messages sent / edited",
      "health.delivered": "Results delivered",
      "health.ledger": "Charges / refunds",
      "health.sessions": "Open pages",
      "health.uptime": "Uptime",
      "health.ok": "OK",
      "health.down": "DOWN",
      "health.off": "not configured (polling only)",
      "health.on": "configured",
      "chart.tasks": "tasks",
      "chart.succeeded": "succeeded",
      "scroll.hint": "Swipe sideways to see every column →",
      "media.gone": "🖼 no longer kept (the playground keeps recent images only)",
      "welcome.title": "Draw something with Midjourney",
      "welcome.text": "Type /imagine and describe a picture, then press the buttons under the result. Add photos with 📎 for /describe or /blend. Tap an example to start:",
      you: "You",
      bot: "mjbot",
    },
    zh: {
      title: "mjbot 演示",
      "tab.chat": "聊天",
      "tab.admin": "管理",
      "input.placeholder": "输入 /imagine 和提示词…",
      send: "发送",
      cancel: "取消",
      attach: "添加图片",
      drop: "松开即可添加图片",
      remove: "移除",
      answer: "回答",
      answered: "已回答",
      "mask.open": "打开蒙版编辑器",
      "ask.files": "照片",
      "files.hint": "请加上命令：/blend、/describe、/swap、/video、/edit 或 /imagine",
      connected: "已连接",
      connecting: "连接中…",
      offline: "已断开，正在重连…",
      edited: "已编辑",
      "upload.failed": "上传失败：",
      "admin.chart": "每 10 分钟的任务数（最近 6 小时）",
      "admin.health": "运行状况",
      "admin.in_flight": "进行中的任务",
      "admin.recent": "最近的任务",
      "admin.usage": "今日各用户用量",
      "admin.empty": "暂无数据",
      "admin.error": "无法加载管理数据。",
      "col.task": "任务",
      "col.kind": "类型",
      "col.status": "状态",
      "col.progress": "进度",
      "col.user": "用户",
      "col.prompt": "提示词",
      "col.created": "创建时间",
      "col.finished": "完成时间",
      "col.elapsed": "耗时",
      "col.age": "已用时",
      "col.tasks": "任务数",
      "col.succeeded": "成功",
      "col.failed": "失败",
      "health.api": "Midjourney 接口",
      "health.url": "接口地址",
      "health.webhook": "回调（notifyHook）",
      "health.polls": "轮询 / 错误",
      "health.requests": "接口请求 / 错误",
      "health.received": "已收到",
      "health.rate_limited": "限流等待次数",
      "health.sent": "已发送 / 已编辑消息",
      "health.delivered": "已送达结果",
      "health.ledger": "扣费 / 退款",
      "health.sessions": "打开的页面",
      "health.uptime": "运行时间",
      "health.ok": "正常",
      "health.down": "不可用",
      "health.off": "未配置（仅轮询）",
      "health.on": "已配置",
      "chart.tasks": "任务",
      "chart.succeeded": "成功",
      "scroll.hint": "左右滑动可查看所有列 →",
      "media.gone": "🖼 已不再保存（演示页只保留最近的图片）",
      "welcome.title": "用 Midjourney 画点什么",
      "welcome.text": "输入 /imagine 和画面描述，然后点结果下方的按钮。用 📎 添加照片可以 /describe 或 /blend。点一个示例开始：",
      you: "你",
      bot: "mjbot",
    },
  };

  const PHOTO_COMMANDS = ["describe", "blend", "swap", "video", "edit", "imagine"];
  // The first screen's examples (English: what Midjourney understands best).
  const EXAMPLES = [
    "a red fox in fresh snow, golden hour --ar 3:2",
    "a lighthouse on a cliff at dusk, watercolor",
    "a tiny robot watering plants, isometric 3d",
  ];
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  const state = {
    lang: pickLang(),
    session: query.get("session") || "",
    ws: null,
    retry: 0,
    messages: new Map(), // id -> message JSON
    nodes: new Map(), // id -> element
    commands: [],
    files: [],
    hint: -1,
    replyTo: null,
    adminTimer: null,
    tab: "chat",
  };

  function pickLang() {
    const wanted = query.get("lang") || localStorage.getItem("mjbot.lang") || navigator.language || "en";
    return wanted.toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  function tr(key) {
    return (UI[state.lang] && UI[state.lang][key]) || UI.en[key] || key;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // --- language -----------------------------------------------------------------------------

  function applyLang() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = tr("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = tr(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = tr(node.dataset.i18nPlaceholder);
    }
    for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = tr(node.dataset.i18nTitle);
    for (const node of document.querySelectorAll("[data-i18n-aria]")) {
      node.setAttribute("aria-label", tr(node.dataset.i18nAria));
    }
    for (const button of document.querySelectorAll(".lang button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    setStatus($("status").dataset.state);
    for (const message of state.messages.values()) render(message);
    welcome(true);
    if (state.tab === "admin") loadAdmin();
  }

  function setLang(lang) {
    state.lang = lang === "zh" ? "zh" : "en";
    localStorage.setItem("mjbot.lang", state.lang);
    send({ type: "lang", lang: state.lang });
    applyLang();
  }

  // --- connection ---------------------------------------------------------------------------

  function setStatus(name) {
    const node = $("status");
    node.dataset.state = name;
    node.title = tr(name);
    node.setAttribute("aria-label", tr(name));
  }

  function connect() {
    const params = new URLSearchParams({ lang: state.lang });
    if (state.session) params.set("session", state.session);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?${params}`);
    state.ws = ws;
    setStatus("connecting");
    ws.addEventListener("open", () => {
      state.retry = 0;
      setStatus("connected");
    });
    ws.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      onEvent(data);
    });
    ws.addEventListener("close", () => {
      if (state.ws !== ws) return;
      setStatus("offline");
      const delay = Math.min(10000, 500 * 2 ** state.retry++);
      setTimeout(connect, delay);
    });
  }

  function send(data) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(data));
      return true;
    }
    return false;
  }

  function onEvent(data) {
    switch (data.type) {
      case "hello":
        state.session = data.session;
        state.commands = data.commands || [];
        state.messages.clear();
        state.nodes.clear();
        $("messages").textContent = "";
        for (const message of data.messages || []) upsert(message, false);
        welcome();
        // The admin tab (everyone's prompts) is for the admin token only.
        document.querySelector(".tabs").hidden = !data.admin;
        if (!data.admin && state.tab === "admin") showTab("chat");
        if (data.lang !== state.lang) send({ type: "lang", lang: state.lang });
        document.body.dataset.ready = "true";
        scrollDown(true);
        break;
      case "message":
        upsert(data.message, true);
        break;
      case "edit":
        upsert(data.message, false);
        break;
      case "delete":
        remove(data.message.id);
        break;
      case "lang":
        state.commands = data.commands || state.commands;
        break;
      case "notice":
        toast(data.text, data.alert);
        break;
      case "error":
        toast(data.text, true);
        break;
    }
  }

  // --- messages -----------------------------------------------------------------------------

  function upsert(message, fresh) {
    const known = state.messages.has(message.id);
    state.messages.set(message.id, message);
    welcome();
    const stick = nearBottom();
    render(message);
    if (!known) scrollDown(stick || message.from === "user");
    else if (stick) scrollDown(true);
    if (fresh && message.ask && !message.answered) openAsk(message);
  }

  function remove(id) {
    state.messages.delete(id);
    const node = state.nodes.get(id);
    if (node) node.remove();
    state.nodes.delete(id);
    welcome();
  }

  /** The first screen: what to type, and examples to tap (only while the chat is empty). */
  function welcome(rebuild) {
    const box = $("messages");
    let node = box.querySelector(".welcome");
    if (state.messages.size) {
      if (node) node.remove();
      return;
    }
    if (node && !rebuild) return;
    if (node) node.remove();
    node = el("section", { class: "welcome", "aria-labelledby": "welcome-title" }, [
      el("h2", { id: "welcome-title", text: tr("welcome.title") }),
      el("p", { text: tr("welcome.text") }),
      el("div", { class: "examples" }, EXAMPLES.map((prompt) => el("button", {
        type: "button", class: "example", text: `/imagine ${prompt}`,
        onclick: () => {
          const input = $("input");
          input.value = `/imagine ${prompt}`;
          autosize();
          input.focus();
        },
      }))),
    ]);
    box.append(node);
  }

  function render(message) {
    const node = el("article", {
      class: `msg from-${message.from}` + (message.ask ? " ask" : ""),
      "data-id": message.id,
      "data-kind": message.media.length ? message.media[0].kind : "text",
    });
    if (message.reply_to && state.messages.has(message.reply_to)) {
      const quoted = state.messages.get(message.reply_to);
      const snippet = (quoted.text || (quoted.media.length ? "🖼" : "")).split("\n")[0];
      node.append(el("div", {
        class: "quote", text: snippet.slice(0, 90),
        onclick: () => state.nodes.get(quoted.id)?.scrollIntoView({ behavior: "smooth", block: "center" }),
      }));
    }
    if (message.media.length) {
      const gallery = el("div", { class: `media count-${Math.min(message.media.length, 4)}` });
      for (const item of message.media) {
        // An album's picture or clip with its own words (e.g. "2 · 9 s") is a captioned tile.
        if (item.caption) {
          const tile = el("figure", { class: "tile" });
          tile.append(mediaNode(item), el("figcaption", { text: item.caption }));
          gallery.append(tile);
        } else {
          gallery.append(mediaNode(item));
        }
      }
      node.append(gallery);
    }
    if (message.text) node.append(el("div", { class: "text", text: message.text }));
    if (message.rows.length) node.append(buttonRows(message));
    if (message.ask) node.append(askButton(message));
    const when = new Date(message.time * 1000).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en", {
      hour: "2-digit", minute: "2-digit",
    });
    node.append(el("div", { class: "meta", text: message.edited ? `${tr("edited")} · ${when}` : when }));
    const old = state.nodes.get(message.id);
    if (old) {
      old.replaceWith(node);
    } else {
      const after = [...state.nodes.keys()].filter((id) => id > message.id).sort((a, b) => a - b)[0];
      if (after !== undefined) $("messages").insertBefore(node, state.nodes.get(after));
      else $("messages").append(node);
    }
    state.nodes.set(message.id, node);
  }

  function mediaNode(item) {
    if (item.kind === "video") {
      return el("video", {
        src: item.url, controls: true, playsinline: true, preload: "metadata", loop: true,
        poster: item.poster || undefined,
      });
    }
    if (item.kind === "photo" || item.content_type.startsWith("image/")) {
      const img = el("img", { src: item.url, alt: item.filename, loading: "lazy" });
      img.addEventListener("load", () => { if (nearBottom(img.height + 80)) scrollDown(true); });
      // Dropped from the playground's memory budget: say so instead of a broken image.
      img.addEventListener("error", () => img.replaceWith(el("div", { class: "gone", text: tr("media.gone") })));
      img.addEventListener("click", () => lightbox(item.url));
      return img;
    }
    return el("a", { class: "document", href: item.url, download: item.filename, text: `📄 ${item.filename}` });
  }

  function buttonRows(message) {
    const box = el("div", { class: "buttons" });
    for (const row of message.rows) {
      const line = el("div", { class: "row" });
      for (const choice of row) {
        if (choice.url) {
          line.append(el("a", {
            class: `btn style-${choice.style}`, href: choice.url, target: "_blank", rel: "noopener",
            text: choice.label, title: choice.title || undefined, "aria-label": choice.title || undefined,
          }));
          continue;
        }
        // An icon alone (🔄 🌱 📎 ✂️, arrows) gets its name as tooltip and accessible label.
        const button = el("button", {
          type: "button", class: `btn style-${choice.style}`, "data-token": choice.token,
          text: choice.label, title: choice.title || undefined, "aria-label": choice.title || undefined,
        });
        button.addEventListener("click", () => {
          button.classList.add("pressed");
          setTimeout(() => button.classList.remove("pressed"), 1200);
          send({ type: "press", token: choice.token });
        });
        line.append(button);
      }
      box.append(line);
    }
    return box;
  }

  function askButton(message) {
    const label = message.answered ? tr("answered") : message.ask.kind === "mask" ? tr("mask.open") : tr("answer");
    return el("div", { class: "buttons" }, [
      el("div", { class: "row" }, [
        el("button", {
          type: "button", class: "btn style-primary ask-open", disabled: message.answered,
          text: (message.ask.kind === "mask" ? "🖌 " : "✍️ ") + label,
          onclick: () => openAsk(message),
        }),
      ]),
    ]);
  }

  function nearBottom(margin = 120) {
    const box = $("messages");
    return box.scrollHeight - box.scrollTop - box.clientHeight < margin;
  }

  function scrollDown(force) {
    if (!force) return;
    const box = $("messages");
    requestAnimationFrame(() => { box.scrollTop = box.scrollHeight; });
  }

  let toastTimer = null;
  function toast(text, alert) {
    const node = $("toast");
    const stick = nearBottom();
    node.textContent = text;
    node.classList.toggle("alert", Boolean(alert));
    node.hidden = false;
    scrollDown(stick); // the toast takes room above the chat: keep the newest message in view
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, alert ? 5000 : 2500);
  }

  function lightbox(url) {
    const box = $("lightbox");
    box.querySelector("img").src = url;
    box.hidden = false;
  }

  // --- questions: text dialogs and the mask editor ------------------------------------------

  function openAsk(message) {
    if (message.answered) return;
    if (message.ask.kind === "mask") openMask(message);
    else openTextAsk(message);
  }

  function openTextAsk(message) {
    const dialog = $("ask-dialog");
    if (dialog.open) dialog.close();
    $("ask-title").textContent = message.ask.title || tr("answer");
    $("ask-text").textContent = message.text;
    const input = $("ask-input");
    input.value = message.ask.prefill || "";
    input.placeholder = message.ask.placeholder || "";
    // A photo command sent without its photo asks for one: the answer carries files.
    $("ask-files-label").hidden = !PHOTO_COMMANDS.includes(message.ask.title);
    $("ask-files").value = "";
    dialog.dataset.askId = message.id;
    dialog.showModal();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function openMask(message) {
    const dialog = $("mask-dialog");
    if (dialog.open) dialog.close();
    const host = $("mask-host");
    host.textContent = "";
    const box = el("div");
    host.append(box);
    dialog.dataset.askId = message.id;
    new window.MaskEditor(box, {
      imageUrl: `/api/region/${encodeURIComponent(message.ask.ref)}/image`
        + (state.session ? `?session=${encodeURIComponent(state.session)}` : ""),
      prompt: message.ask.prefill || "",
      title: message.ask.title || "",
      lang: state.lang,
      onCancel: () => dialog.close(),
      onSubmit: async (maskPng, prompt) => {
        const body = {
          ref: message.ask.ref, mask_png: maskPng, prompt, ask_message_id: message.id, lang: state.lang,
        };
        if (state.session) body.session = state.session;
        await window.MaskEditor.postMask(body);
        setTimeout(() => dialog.close(), 400);
      },
    });
    dialog.showModal();
  }

  function setupDialogs() {
    const dialog = $("ask-dialog");
    $("ask-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("ask-input").value.trim();
      const files = [...$("ask-files").files].filter((file) => file.type.startsWith("image/"));
      const askId = Number(dialog.dataset.askId);
      if (files.length) {
        uploadFiles(text, files, askId);
      } else if (text) {
        send({ type: "answer", ask_message_id: askId, text });
      } else {
        return;
      }
      dialog.close();
    });
    $("ask-cancel").addEventListener("click", () => dialog.close());
    $("ask-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask-form").requestSubmit();
    });
    $("lightbox").addEventListener("click", () => { $("lightbox").hidden = true; });
  }

  // --- composing: text, command hints, files ------------------------------------------------

  function submitComposer() {
    const input = $("input");
    const text = input.value.trim();
    if (state.files.length) {
      uploadFiles(text);
    } else if (text) {
      if (!send({ type: "text", text })) return;
    } else {
      return;
    }
    input.value = "";
    autosize();
    hideHints();
  }

  async function uploadFiles(text, chosen, replyTo) {
    const form = new FormData();
    form.append("text", text);
    form.append("lang", state.lang);
    if (state.session) form.append("session", state.session);
    if (replyTo) form.append("reply_to", String(replyTo));
    const files = chosen || state.files;
    for (const file of files) form.append("files", file, file.name);
    if (!chosen) {
      state.files = [];
      renderAttachments();
    }
    try {
      const url = state.session ? `/api/upload?session=${encodeURIComponent(state.session)}` : "/api/upload";
      const response = await fetch(url, { method: "POST", body: form, credentials: "same-origin" });
      if (!response.ok) throw new Error((await response.text()) || response.statusText);
    } catch (err) {
      if (!chosen) {
        state.files = files;
        renderAttachments();
      }
      toast(tr("upload.failed") + (err.message || err), true);
    }
  }

  function addFiles(list) {
    for (const file of list) {
      if (file.type.startsWith("image/") && state.files.length < 5) state.files.push(file);
    }
    renderAttachments();
    $("input").focus();
  }

  function renderAttachments() {
    const box = $("attachments");
    for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
    box.textContent = "";
    box.hidden = state.files.length === 0;
    state.files.forEach((file, index) => {
      const img = el("img", { src: URL.createObjectURL(file), alt: file.name });
      box.append(el("figure", { class: "attachment" }, [
        img,
        el("button", {
          type: "button", class: "remove", title: tr("remove"), "aria-label": tr("remove"), text: "×",
          onclick: () => { state.files.splice(index, 1); renderAttachments(); },
        }),
      ]));
    });
    if (state.files.length) box.append(el("div", { class: "attach-hint", text: tr("files.hint") }));
  }

  function autosize() {
    const input = $("input");
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  function showHints() {
    const input = $("input");
    const value = input.value;
    const match = /^\/(\w*)$/.exec(value);
    const box = $("hints");
    if (!match) return hideHints();
    const found = state.commands.filter((c) => c.name.startsWith(match[1].toLowerCase()));
    if (!found.length) return hideHints();
    box.textContent = "";
    state.hint = Math.min(Math.max(state.hint, 0), found.length - 1);
    found.forEach((command, index) => {
      box.append(el("div", {
        class: "hint" + (index === state.hint ? " active" : ""), role: "option",
        "data-command": command.name,
        onmousedown: (event) => { event.preventDefault(); complete(command.name); },
      }, [el("b", { text: "/" + command.name }), el("span", { text: command.description })]));
    });
    box.hidden = false;
  }

  function hideHints() {
    $("hints").hidden = true;
    state.hint = -1;
  }

  function complete(name) {
    const input = $("input");
    input.value = `/${name} `;
    hideHints();
    input.focus();
  }

  function setupComposer() {
    const input = $("input");
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      submitComposer();
    });
    input.addEventListener("input", () => {
      autosize();
      showHints();
    });
    input.addEventListener("keydown", (event) => {
      const hints = $("hints");
      if (!hints.hidden) {
        const options = hints.querySelectorAll(".hint");
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          state.hint = (state.hint + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
          showHints();
          return;
        }
        const typed = input.value.trim().slice(1).toLowerCase();
        const whole = state.commands.some((command) => command.name === typed);
        if (event.key === "Tab" || (event.key === "Enter" && options.length && !whole)) {
          event.preventDefault();
          complete(options[Math.max(0, state.hint)].dataset.command);
          return;
        }
        if (event.key === "Escape") return hideHints();
      }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitComposer();
      }
    });
    input.addEventListener("blur", () => setTimeout(hideHints, 150));
    $("file").addEventListener("change", (event) => {
      addFiles(event.target.files);
      event.target.value = "";
    });
    input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (files.length) {
        event.preventDefault();
        addFiles(files);
      }
    });
    let depth = 0;
    const drop = $("drop");
    const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
    window.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      depth++;
      drop.hidden = false;
    });
    window.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) drop.hidden = true;
    });
    window.addEventListener("dragover", (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    window.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      drop.hidden = true;
      addFiles(event.dataTransfer.files);
    });
  }

  // --- admin --------------------------------------------------------------------------------

  function showTab(name) {
    state.tab = name;
    for (const button of document.querySelectorAll(".tabs button")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === name));
    }
    $("chat").hidden = name !== "chat";
    $("admin").hidden = name !== "admin";
    clearInterval(state.adminTimer);
    if (name === "admin") {
      loadAdmin();
      state.adminTimer = setInterval(loadAdmin, 3000);
    } else {
      scrollDown(true);
    }
  }

  async function loadAdmin() {
    try {
      const response = await fetch("/api/admin", { credentials: "same-origin" });
      if (!response.ok) throw new Error(response.statusText);
      renderAdmin(await response.json());
      $("admin").dataset.loaded = "true";
    } catch {
      toast(tr("admin.error"), true);
    }
  }

  function clock(seconds) {
    if (!seconds) return "";
    return new Date(seconds * 1000).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en", { hour12: false });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function table(node, columns, rows) {
    node.textContent = "";
    node.append(el("thead", {}, [el("tr", {}, columns.map(([key]) => el("th", { text: tr(key) })))]));
    const body = el("tbody");
    if (!rows.length) {
      body.append(el("tr", {}, [el("td", { class: "empty", colspan: columns.length, text: tr("admin.empty") })]));
    }
    for (const row of rows) {
      body.append(el("tr", {}, columns.map(([key, value]) => {
        const cell = value(row);
        return cell instanceof Node ? el("td", {}, [cell]) : el("td", { text: cell ?? "", title: key === "col.prompt" ? row.prompt : undefined });
      })));
    }
    node.append(body);
  }

  function statusBadge(row) {
    return el("span", { class: `badge status-${String(row.status).toLowerCase()}`, text: row.status });
  }

  function userLabel(row) {
    return `${row.platform}:${String(row.user_id).slice(0, 10)}`;
  }

  function renderAdmin(data) {
    const kind = (row) => row.label && row.kind === "action" ? row.label : row.kind;
    const prompt = (row) => (row.prompt || "").slice(0, 60);
    $("in-flight-count").textContent = `(${data.in_flight.length})`;
    table($("in-flight"), [
      ["col.task", (r) => r.key], ["col.kind", kind], ["col.status", statusBadge],
      ["col.progress", (r) => `${r.progress || 0}%`], ["col.user", userLabel],
      ["col.age", (r) => duration(r.age)], ["col.prompt", prompt],
    ], data.in_flight);
    table($("recent"), [
      ["col.task", (r) => r.key], ["col.kind", kind], ["col.status", statusBadge],
      ["col.user", userLabel], ["col.created", (r) => clock(r.created_at)],
      ["col.finished", (r) => clock(r.finished_at)], ["col.elapsed", (r) => duration(r.elapsed)],
      ["col.prompt", prompt],
    ], data.recent);
    table($("usage"), [
      ["col.user", userLabel], ["col.tasks", (r) => r.tasks],
      ["col.succeeded", (r) => r.succeeded || 0], ["col.failed", (r) => r.failed || 0],
    ], data.usage);
    renderHealth(data.health || {});
    renderChart(data.chart);
    markOverflow();
  }

  /** Tables wider than the screen (phones) scroll sideways: mark them, so a hint shows. */
  function markOverflow() {
    for (const box of document.querySelectorAll(".scroll")) {
      box.dataset.overflow = String(box.scrollWidth > box.clientWidth + 1);
    }
  }

  function renderHealth(h) {
    const api = h.api || {};
    const rows = [
      ["health.api", api.ok === true ? `✅ ${tr("health.ok")} · ${api.latency_ms} ms`
        : api.ok === false ? `❌ ${tr("health.down")} · ${api.error}` : "—"],
      ["health.url", h.api_url || "—"],
      ["health.webhook", h.webhook && h.webhook.configured
        ? `✅ ${tr("health.on")} · ${h.webhook.received ?? 0} ${tr("health.received")}`
        : tr("health.off")],
      ["health.requests", h.app && h.app.api_requests !== undefined
        ? `${h.app.api_requests} / ${Object.values(h.app.api_errors || {}).reduce((a, b) => a + b, 0)}`
        : "—"],
      ["health.polls", h.tracker ? `${h.tracker.polls ?? "—"} / ${h.tracker.poll_errors ?? "—"}` : "—"],
      ["health.rate_limited", h.outbox ? String(h.outbox.rate_limited ?? "—") : "—"],
      ["health.sent", h.outbox && h.outbox.sends !== undefined
        ? `${h.outbox.sends} / ${h.outbox.edits}` : "—"],
      ["health.delivered", h.deliveries ? String(h.deliveries.results ?? "—") : "—"],
      ["health.ledger", h.ledger && h.ledger.charges !== undefined
        ? `${h.ledger.charges} / ${h.ledger.refunds}` : "—"],
      ["health.sessions", h.web ? String(h.web.sessions) : "—"],
      ["health.uptime", h.web ? duration(h.web.uptime_s) : "—"],
    ];
    const node = $("health");
    node.textContent = "";
    node.append(el("tbody", {}, rows.map(([key, value]) =>
      el("tr", {}, [el("th", { text: tr(key) }), el("td", { text: value })]))));
  }

  function renderChart(chart) {
    const ns = "http://www.w3.org/2000/svg";
    const buckets = chart.buckets;
    const width = 360;
    const height = 140;
    const pad = { left: 26, right: 6, top: 8, bottom: 20 };
    const max = Math.max(1, ...buckets.map((b) => b.tasks));
    const step = (width - pad.left - pad.right) / buckets.length;
    const scale = (height - pad.top - pad.bottom) / max;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", tr("admin.chart"));
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    add("line", { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, class: "axis" });
    add("text", { x: pad.left - 4, y: pad.top + 8, class: "label", "text-anchor": "end" }, String(max));
    add("text", { x: pad.left - 4, y: height - pad.bottom, class: "label", "text-anchor": "end" }, "0");
    buckets.forEach((bucket, i) => {
      const x = pad.left + i * step + 1;
      const h = bucket.tasks * scale;
      const ok = bucket.succeeded * scale;
      const title = `${clock(bucket.start)} · ${bucket.tasks} ${tr("chart.tasks")}, ${bucket.succeeded} ${tr("chart.succeeded")}`;
      const bar = add("rect", { x, y: height - pad.bottom - h, width: Math.max(1, step - 2), height: h, class: "bar" });
      add("title", {}, title);
      bar.append(svg.lastChild);
      if (ok) add("rect", { x, y: height - pad.bottom - ok, width: Math.max(1, step - 2), height: ok, class: "bar ok" });
      if (i % 6 === 0) {
        add("text", { x, y: height - 6, class: "label" },
          new Date(bucket.start * 1000).toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en", {
            hour: "2-digit", minute: "2-digit", hour12: false,
          }));
      }
    });
    const box = $("chart");
    box.textContent = "";
    box.append(svg);
    box.dataset.total = String(buckets.reduce((sum, b) => sum + b.tasks, 0));
  }

  // --- start --------------------------------------------------------------------------------

  function start() {
    for (const button of document.querySelectorAll(".lang button")) {
      button.addEventListener("click", () => setLang(button.dataset.lang));
    }
    for (const button of document.querySelectorAll(".tabs button")) {
      button.addEventListener("click", () => showTab(button.dataset.tab));
    }
    setupComposer();
    setupDialogs();
    window.addEventListener("resize", markOverflow);
    applyLang();
    connect();
  }

  start();
})();
