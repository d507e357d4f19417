// Connects the wasm sync engine to the `project:ID` channel of the official
// phoenix client. This file only moves payloads: every diff, rebase, checksum
// and z index is computed by the engine (native/tandem_wasm).

export class ProjectSync {
  constructor(socket, project, clientId, engine, onChange) {
    this.engine = engine;
    this.onChange = onChange;
    this.joined = false;
    // batch_id -> its latest push: an answer to an earlier push only says
    // what the server knew before that one (PROTOCOL.md, resending).
    this.latestPush = new Map();
    // A function, so each rejoin asks only for what it missed.
    this.channel = socket.channel(`project:${project}`, () => ({
      protocol: 1,
      client_id: clientId,
      last_seq: this.joined ? engine.seq() : null,
    }));
    this.channel.on("batch", (batch) => this.react(this.engine.receive(JSON.stringify(batch))));
    this.channel.onError(() => this.onChange());
    this.channel.onClose(() => this.onChange());
  }

  join() {
    this.channel
      .join()
      .receive("ok", (reply) => {
        this.react(this.engine.install(JSON.stringify(reply)));
        if (!this.joined) performance.mark("tandem:joined");
        this.joined = true;
        // Everything not yet sequenced goes (again): the server answers a
        // retried batch_id without applying it twice.
        for (const batch of JSON.parse(this.engine.pending())) this.send(batch);
      })
      .receive("error", (reason) => console.warn("project join refused", reason));
  }

  get online() {
    return this.channel.state === "joined";
  }

  /** Sends the edit the engine just queued (when online; else on rejoin). */
  sent(batchId) {
    if (batchId === undefined) return;
    if (this.online) this.resend(batchId);
    this.onChange();
  }

  send(batch) {
    const push = this.channel.push("diffs", batch);
    this.latestPush.set(batch.batch_id, push);
    const latest = () => this.latestPush.get(batch.batch_id) === push;
    push
      .receive("ok", ({ seq }) => {
        if (latest()) this.latestPush.delete(batch.batch_id);
        this.engine.acknowledged(batch.batch_id, seq);
        this.onChange();
      })
      // No answer: send it again if it is still pending (a retried
      // batch_id is answered, never applied twice); a rejoin resends anyway.
      .receive("timeout", () => latest() && this.online && this.resend(batch.batch_id))
      .receive("error", (error) => latest() && this.refused(batch, error?.reason));
  }

  /** Storage trouble and floods keep the edit (PROTOCOL.md); the rest drop it. */
  refused(batch, reason) {
    this.latestPush.delete(batch.batch_id);
    const retry = (batchId) => setTimeout(() => this.online && this.resend(batchId), 500);
    if (reason === "unavailable") {
      retry(batch.batch_id);
    } else if (reason === "rate_limited" || reason === "not_sequenced") {
      const fresh = this.engine.rekey(batch.batch_id);
      if (fresh !== undefined) retry(fresh);
    } else {
      console.warn("batch refused", batch.batch_id, reason);
      this.engine.rejected(batch.batch_id);
    }
    this.onChange();
  }

  resend(batchId) {
    const batch = JSON.parse(this.engine.pending()).find((b) => b.batch_id === batchId);
    if (batch) this.send(batch);
  }

  react(reactionJson) {
    const reaction = JSON.parse(reactionJson);
    if (reaction.gap) {
      this.channel.push("sync", { since: this.engine.seq() }).receive("ok", (reply) => this.react(this.engine.install(JSON.stringify(reply))));
    } else if (reaction.verify) {
      console.error("checksum mismatch at seq", reaction.verify.seq);
      this.channel.push("verify", reaction.verify).receive("ok", (reply) => {
        if (reply.snapshot) this.react(this.engine.install(JSON.stringify(reply)));
      });
    }
    this.onChange();
  }
}
