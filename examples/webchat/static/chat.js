// The sylvan webchat page: loads the history over the JSON API, then joins
// the room over a WebSocket and shows every event in sequence order.
// `?name=NICK` fills the nickname field; `?say=TEXT` sends TEXT once joined.
"use strict";

const list = document.getElementById("messages");
const statusLine = document.getElementById("status");
const form = document.getElementById("compose");
const nameField = document.getElementById("name");
const textField = document.getElementById("text");
const params = new URLSearchParams(location.search);

nameField.value = params.get("name") || localStorage.getItem("webchat-name") || "";
let pendingSay = params.get("say");
let socket = null;
let me = null; // our name in the room, once welcomed
let retryDelay = 500;
const shown = new Set(); // seq numbers already in the list

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Adds one event to the list, in seq order (history and live events may
// overlap or arrive out of order); events without a seq go at the end.
function show(event) {
  if (event.seq !== undefined) {
    if (shown.has(event.seq)) return;
    shown.add(event.seq);
  }
  const item = document.createElement("li");
  item.className = event.type;
  if (event.seq !== undefined) item.dataset.seq = event.seq;
  if (event.time !== undefined) {
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = timeOf(event.time);
    item.append(time);
  }
  const body = document.createElement("span");
  switch (event.type) {
    case "message": {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = event.name + ":";
      item.append(name);
      body.textContent = event.text;
      break;
    }
    case "join":
      body.className = "notice";
      body.textContent = event.name + " joined";
      break;
    case "leave":
      body.className = "notice";
      body.textContent = event.name + (event.reason === "too slow" ? " was disconnected (too slow)" : " left");
      break;
    case "rename":
      body.className = "notice";
      body.textContent = event.old + " is now " + event.name;
      break;
    case "welcome":
      body.className = "notice";
      body.textContent = "You are " + event.name + ". Here: " + (event.online.join(", ") || "nobody else") + ".";
      break;
    case "error":
      body.textContent = "Error: " + event.text;
      break;
    default:
      return;
  }
  item.append(body);
  let before = null;
  if (event.seq !== undefined) {
    for (const other of list.children) {
      if (other.dataset.seq !== undefined && Number(other.dataset.seq) > event.seq) {
        before = other;
        break;
      }
    }
  }
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.insertBefore(item, before);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message));
    return true;
  }
  return false;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const name = nameField.value.trim();
  socket = new WebSocket(scheme + location.host + "/ws?name=" + encodeURIComponent(name));
  socket.onopen = () => {
    retryDelay = 500;
  };
  socket.onmessage = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "welcome" || (event.type === "rename" && event.old === me)) {
      me = event.name;
      nameField.value = me;
      statusLine.textContent = "connected as " + me;
    }
    if (event.type === "welcome" && pendingSay) {
      send({ type: "say", text: pendingSay });
      pendingSay = null;
    }
    show(event);
  };
  socket.onclose = (close) => {
    statusLine.textContent = "disconnected" + (close.reason ? " (" + close.reason + ")" : "") + "; reconnecting…";
    me = null;
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = textField.value.trim();
  if (text && send({ type: "say", text })) textField.value = "";
});

nameField.addEventListener("change", () => {
  const name = nameField.value.trim();
  localStorage.setItem("webchat-name", name);
  if (name && name !== me) send({ type: "rename", name });
});

fetch("/api/history")
  .then((response) => response.json())
  .then((events) => events.forEach(show))
  .catch(() => {})
  .finally(connect);
