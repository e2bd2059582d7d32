// How the console writes the hub's words and numbers: role, level and camera-status labels
// (Chinese first, English beside), a person's name, times and durations.

export const ROLES = {
  admin: "管理员 Admin",
  dispatcher: "指挥调度 Dispatcher",
  receptionist: "接访员 Receptionist",
  mediator: "调解员 Mediator",
  operator: "监控员 Operator",
  terminal: "终端 Terminal",
  petitioner: "来访群众 Petitioner",
};

export const LEVELS = { county: "县 County", township: "乡镇 Township", village: "村 Village" };

export const CAMERA_STATUS = { online: "在线 Online", offline: "离线 Offline", idle: "待机 Idle" };

// "显示名 (user)" when the display name differs from the user name, else the user name.
export function personName(me) {
  return me.display_name && me.display_name !== me.user ? `${me.display_name} (${me.user})` : me.user;
}

export function fmtTime(epoch) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtSeconds(s) {
  if (s == null) return "";
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
}
