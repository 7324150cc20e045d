import { randomBytes } from "node:crypto";

export const completionId = (prefix: "chatcmpl" | "cmpl"): string => `${prefix}-${randomBytes(12).toString("hex")}`;
export const unixNow = (): number => Math.floor(Date.now() / 1000);
